//! The paper sheet format, rendered and parsed: the numbered hex lines with a check code
//! each, the header lines and the QR codes. Whole-key sheets (`keys print`/`restore`,
//! [`super::paper`]) and Shamir share sheets (`keys split`/`combine`, [`super::split`]) are
//! both laid out here ([`SheetLayout`]); what a sheet's payload means is theirs.
//!
//! # The paper format (`offline-tuf paper key v1`)
//!
//! The payload is the ED25519 32-byte seed, or for RSA the bytes of the PKCS#1 PEM (exactly
//! the `private` value of the `.sec` file). Its lowercase hex is cut into lines of
//! [`GROUPS_PER_LINE`] groups of [`GROUP_CHARS`] hex digits (16 bytes a line):
//!
//! ```text
//! 001: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f | 5e2c
//! ```
//!
//! The check code after `|` is the first 4 hex digits of
//! `SHA-256("<line number in decimal>:<the line's hex digits>")`, so a mistyped digit, a
//! skipped group or two swapped lines are reported with the line number. The keyid of the
//! rebuilt key must equal the sheet's `keyid:` line, which protects the whole. Each QR code
//! holds `OTK1 <KEYTYPE> <KEYID> <part>/<parts> <HEX>` (upper case, QR alphanumeric mode,
//! error correction M, at most 69 modules wide so that it prints in 80 columns), where HEX is
//! the ED25519 seed or, for RSA, the PKCS#1 DER (smaller than the PEM: fewer codes);
//! `keys restore --groups-file` also accepts the scanned texts of all parts.

use std::fmt::Write as _;

use qrcode::bits::Bits;
use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode, Version};
use sha2::{Digest, Sha256};
use shared::keys::{KeyId, KeyType, PrivateKey};
use zeroize::Zeroizing;

/// Format line of the sheet.
pub const FORMAT: &str = "offline-tuf paper key v1";
/// Hex digits per group.
pub const GROUP_CHARS: usize = 4;
/// Groups per line.
pub const GROUPS_PER_LINE: usize = 8;
/// Hex digits per line.
pub const LINE_CHARS: usize = GROUP_CHARS * GROUPS_PER_LINE;
/// Hex digits of a line's check code.
pub const CHECK_CHARS: usize = 4;
/// Prefix of QR code texts.
pub const QR_PREFIX: &str = "OTK1";
/// Largest QR symbol (in modules) rendered: with its 4-module quiet zone on each side and a
/// 2-column indent it fits 79 columns.
pub const QR_MAX_MODULES: usize = 69;
/// The QR version of [`QR_MAX_MODULES`] (17 + 4 × 13 = 69).
pub const QR_MAX_VERSION: i16 = 13;

/// What is wrong with a sheet. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    /// The file is not UTF-8 text.
    #[error("not a text file")]
    NotText,
    /// No group lines and no QR texts.
    #[error("no key lines found (expected lines like `001: xxxx xxxx … | cccc`)")]
    NoLines,
    /// Lines with problems (each says which and what).
    #[error("{}", .0.join("; "))]
    BadLines(Vec<String>),
    /// The keyid is missing.
    #[error("no keyid: the sheet's `keyid:` line is missing; give --keyid KEYID as printed on the sheet")]
    NoKeyId,
    /// Two different keyids (sheet vs command line, or QR parts).
    #[error("the keyid given ({given}) differs from the sheet's ({sheet})")]
    KeyIdConflict {
        /// From the command line.
        given: String,
        /// From the sheet.
        sheet: String,
    },
    /// The keyid line is malformed.
    #[error("the `keyid:` line does not hold a keyid (64 hex digits)")]
    BadKeyId,
    /// The key type is not supported.
    #[error("unsupported key type `{0}` (expected ED25519 or RSA)")]
    BadKeyType(String),
    /// The payload does not form a key of the type.
    #[error(
        "all check codes match but the content is not a valid {keytype} private key ({reason})"
    )]
    BadKey {
        /// The key type.
        keytype: String,
        /// Why (no key material).
        reason: String,
    },
    /// The rebuilt key is not the one named on the sheet.
    #[error(
        "the key rebuilt from the lines has keyid {actual}, but the sheet names {expected}: \
         the lines belong to another key (sheets mixed up?) or the keyid was copied wrongly"
    )]
    KeyIdMismatch {
        /// From the sheet / command line.
        expected: KeyId,
        /// Of the rebuilt key.
        actual: KeyId,
    },
    /// Rendering the QR code failed.
    #[error("cannot make the QR code: {0}")]
    Qr(String),
}

/// Header data of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetInfo {
    /// `root` (or `targets`).
    pub role: String,
    /// `created-at` of the key, if known.
    pub created_at: Option<String>,
    /// When the sheet was made.
    pub printed_at: String,
    /// Where the key came from (the tarball's file name).
    pub source: String,
}

/// The check code of line `number` holding `hex` (lowercase, no spaces).
pub fn check_code(number: usize, hex: &str) -> String {
    let digest = Sha256::digest(format!("{number}:{hex}").as_bytes());
    hex::encode(digest)[..CHECK_CHARS].to_string()
}

/// The payload of a key: ED25519 seed, or RSA PKCS#1 PEM bytes.
pub fn payload(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>, SheetError> {
    #[derive(serde::Deserialize)]
    struct Sec {
        keyval: Val,
    }
    #[derive(serde::Deserialize)]
    struct Val {
        private: String,
    }
    let json = key.to_json();
    let bad = |reason: &str| SheetError::BadKey {
        keytype: key.public_key().keytype().to_string(),
        reason: reason.to_string(),
    };
    let sec: Sec = serde_json::from_slice(&json).map_err(|_| bad("unreadable key JSON"))?;
    let private = Zeroizing::new(sec.keyval.private);
    match key.key_type() {
        KeyType::Ed25519 => {
            let seed =
                Zeroizing::new(hex::decode(private.trim()).map_err(|_| bad("seed is not hex"))?);
            if seed.len() != 32 {
                return Err(bad("seed is not 32 bytes"));
            }
            Ok(seed)
        }
        KeyType::Rsa => Ok(Zeroizing::new(private.as_bytes().to_vec())),
    }
}

fn describe_payload(kt: KeyType, len: usize) -> String {
    match kt {
        KeyType::Ed25519 => format!("ED25519 private key seed, {len} bytes"),
        KeyType::Rsa => format!("RSA private key, PKCS#1 PEM text, {len} bytes"),
    }
}

/// PEM armour of a PKCS#1 RSA private key.
const RSA_PEM_BEGIN: &str = "-----BEGIN RSA PRIVATE KEY-----";
const RSA_PEM_END: &str = "-----END RSA PRIVATE KEY-----";

/// The DER inside a PKCS#1 PEM text.
fn rsa_pem_to_der(pem: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .trim()
        .strip_prefix(RSA_PEM_BEGIN)?
        .strip_suffix(RSA_PEM_END)?;
    let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
    b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
    let mut der = Zeroizing::new(Vec::with_capacity(b64.len()));
    base64::engine::general_purpose::STANDARD
        .decode_vec(b64.as_bytes(), &mut der)
        .ok()?;
    Some(der)
}

/// The PKCS#1 PEM text (64-character lines, LF, final newline) of RSA key DER — the
/// form fioctl and this toolkit write in `.sec` files.
fn rsa_der_to_pem(der: &[u8]) -> Zeroizing<Vec<u8>> {
    use base64::Engine as _;
    let mut b64 = Zeroizing::new(String::with_capacity(der.len() * 4 / 3 + 4));
    base64::engine::general_purpose::STANDARD.encode_string(der, &mut b64);
    let mut pem = Zeroizing::new(Vec::with_capacity(b64.len() + b64.len() / 64 + 80));
    pem.extend_from_slice(RSA_PEM_BEGIN.as_bytes());
    pem.push(b'\n');
    for line in b64.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(RSA_PEM_END.as_bytes());
    pem.push(b'\n');
    pem
}

/// The hex the QR codes carry: the ED25519 seed, or for RSA the PKCS#1 **DER** (a third
/// smaller than the PEM text, so fewer codes).
fn qr_hex(key: &PrivateKey, payload: &[u8]) -> Result<Zeroizing<String>, SheetError> {
    match key.key_type() {
        KeyType::Ed25519 => Ok(Zeroizing::new(hex::encode(payload))),
        KeyType::Rsa => {
            let der = rsa_pem_to_der(payload).ok_or_else(|| SheetError::BadKey {
                keytype: key.public_key().keytype().to_string(),
                reason: "the private key is not a PKCS#1 PEM text".to_string(),
            })?;
            Ok(Zeroizing::new(hex::encode(&der[..])))
        }
    }
}

/// `content` (upper-case QR alphanumeric characters) as one alphanumeric segment in the
/// smallest QR version up to [`QR_MAX_VERSION`] that holds it at error correction M.
///
/// A single forced segment keeps the size predictable (the automatic mode optimizer may
/// split hex into numeric and alphanumeric runs and need a larger version).
fn alnum_bits(content: &str) -> Option<Bits> {
    (1..=QR_MAX_VERSION).find_map(|v| {
        let mut bits = Bits::new(Version::Normal(v));
        bits.push_alphanumeric_data(content.as_bytes()).ok()?;
        bits.push_terminator(EcLevel::M).ok()?;
        Some(bits)
    })
}

/// One QR code: its text and its rendering (both secret).
type QrPart = (Zeroizing<String>, Zeroizing<String>);

/// Renders the QR code texts and images for `hex` (lowercase payload hex).
fn qr_parts(keytype: &str, keyid: &KeyId, hex: &str) -> Result<Vec<QrPart>, SheetError> {
    let kt = keytype.to_ascii_uppercase();
    let kid = keyid.as_str().to_ascii_uppercase();
    let fits = |content: &str| alnum_bits(content).is_some();
    // The largest chunk (even number of hex digits) that fits with a worst-case part
    // counter (binary search); small payloads fit in one part.
    let probe = |chunk: usize| {
        fits(&format!(
            "{QR_PREFIX} {kt} {kid} 99/99 {}",
            "A".repeat(chunk)
        ))
    };
    let mut chunk = hex.len().max(2);
    if !probe(chunk) {
        let (mut lo, mut hi) = (2, chunk); // lo fits, hi does not
        while hi - lo > 2 {
            let mid = ((lo + hi) / 2) & !1;
            if probe(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        chunk = lo;
    }
    let upper = Zeroizing::new(hex.to_ascii_uppercase());
    let pieces: Vec<&str> = upper
        .as_bytes()
        .chunks(chunk)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let n = pieces.len();
    let mut out = Vec::with_capacity(n);
    for (i, piece) in pieces.iter().enumerate() {
        let content = Zeroizing::new(format!("{QR_PREFIX} {kt} {kid} {}/{n} {piece}", i + 1));
        let bits = alnum_bits(&content)
            .ok_or_else(|| SheetError::Qr("the text does not fit one QR code".to_string()))?;
        let code =
            QrCode::with_bits(bits, EcLevel::M).map_err(|e| SheetError::Qr(e.to_string()))?;
        let image = Zeroizing::new(code.render::<Dense1x2>().quiet_zone(true).build());
        out.push((content, image));
    }
    Ok(out)
}

/// The texts of the sheet's QR codes for `key`, in part order (secret: zeroized on
/// drop). `keys restore --groups-file` accepts them, one a line, in any order.
pub fn qr_texts(key: &PrivateKey) -> Result<Vec<Zeroizing<String>>, SheetError> {
    let payload = payload(key)?;
    let hex = qr_hex(key, &payload)?;
    qr_texts_for(key.public_key().keytype(), key.keyid(), &hex)
}

/// The QR texts of a sheet whose QR type field is `qr_type` and whose QR codes carry
/// `hex` (e.g. a share sheet: `SHARE` and its payload), in part order.
pub fn qr_texts_for(
    qr_type: &str,
    keyid: &KeyId,
    hex: &str,
) -> Result<Vec<Zeroizing<String>>, SheetError> {
    Ok(qr_parts(qr_type, keyid, hex)?
        .into_iter()
        .map(|(text, _)| text)
        .collect())
}

/// What a printed sheet shows around its numbered lines: used for whole keys
/// ([`render`]) and for Shamir shares ([`super::split`]).
pub struct SheetLayout<'a> {
    /// The title (upper case), e.g. `OFFLINE TUF ROOT KEY - PAPER BACKUP`.
    pub title: String,
    /// Lines under the title saying why the sheet is secret and where to keep it.
    pub warning: Vec<String>,
    /// `name: value` header lines (`keyid`, `key type` and `lines` are read back).
    pub headers: Vec<(&'a str, String)>,
    /// How to restore, printed before the lines.
    pub restore: Vec<String>,
    /// The payload as lowercase hex: cut into the numbered, checked lines.
    pub hex: &'a str,
    /// The type field of the QR texts (`ED25519`, `RSA`, `SHARE`).
    pub qr_type: &'a str,
    /// The hex the QR codes carry (may differ from `hex`, e.g. RSA DER).
    pub qr_hex: &'a str,
    /// The keyid in the QR texts.
    pub keyid: &'a KeyId,
}

/// Renders a sheet (a secret: the result is zeroized on drop): title, headers, the
/// numbered lines with their check codes, and the QR codes.
pub fn render_layout(l: &SheetLayout<'_>) -> Result<Zeroizing<String>, SheetError> {
    let lines: Vec<&str> = l
        .hex
        .as_bytes()
        .chunks(LINE_CHARS)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let qrs = qr_parts(l.qr_type, l.keyid, l.qr_hex)?;
    let long = qrs.len() > 1;

    let qr_size: usize = qrs.iter().map(|(c, i)| c.len() + i.len() + 200).sum();
    let mut s = Zeroizing::new(String::with_capacity(4096 + lines.len() * 64 + qr_size));
    let rule = "=".repeat(76);
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(s, "{rule}");
    let _ = writeln!(s, " {}", l.title);
    let _ = writeln!(s, "{rule}");
    for w in &l.warning {
        let _ = writeln!(s, " {w}");
    }
    let _ = writeln!(s);
    let width = l.headers.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 3;
    for (k, v) in &l.headers {
        let _ = writeln!(s, " {:<width$}{v}", format!("{k}:"));
    }
    let _ = writeln!(s, " {:<width$}{}", "lines:", lines.len());
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        " Each line: its number, {GROUPS_PER_LINE} groups of {GROUP_CHARS} hex digits, and after \"|\" a"
    );
    let _ = writeln!(
        s,
        " check code: the first {CHECK_CHARS} hex digits of SHA-256(\"<number>:<line's digits>\")."
    );
    for r in &l.restore {
        let _ = writeln!(s, " {r}");
    }
    let _ = writeln!(s);
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let _ = write!(s, " {n:03}:");
        for g in line.as_bytes().chunks(GROUP_CHARS) {
            let _ = write!(s, " {}", std::str::from_utf8(g).unwrap_or_default());
        }
        // Pad a short last line so that the check codes stay in one column.
        let groups = line.len().div_ceil(GROUP_CHARS);
        let missing =
            (GROUPS_PER_LINE - groups) * (GROUP_CHARS + 1) + (groups * GROUP_CHARS - line.len());
        let _ = writeln!(s, "{} | {}", " ".repeat(missing), check_code(n, line));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, " end of key lines ({} lines)", lines.len());
    let total = qrs.len();
    for (i, (content, image)) in qrs.iter().enumerate() {
        if long {
            s.push('\u{0c}');
            s.push('\n');
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            " QR code {} of {total}: keyid {}, text `{QR_PREFIX} {} …` ({} characters)",
            i + 1,
            l.keyid.short(),
            l.qr_type.to_ascii_uppercase(),
            content.len()
        );
        let _ = writeln!(s);
        for row in image.lines() {
            let _ = writeln!(s, "  {row}");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{rule}");
    Ok(s)
}

/// Renders the sheet for `key` (a secret: the result is zeroized on drop).
pub fn render(key: &PrivateKey, info: &SheetInfo) -> Result<Zeroizing<String>, SheetError> {
    let payload = payload(key)?;
    let hex = Zeroizing::new(hex::encode(&payload[..]));
    let keytype = key.public_key().keytype().to_string();
    let qr_hex = qr_hex(key, &payload)?;
    render_layout(&SheetLayout {
        title: format!(
            "OFFLINE TUF {} KEY - PAPER BACKUP",
            info.role.to_uppercase()
        ),
        warning: vec![
            format!(
                "SECRET. Whoever holds this sheet can sign your factory's TUF {} metadata.",
                info.role
            ),
            "Keep it in a safe. Never photograph or scan it with a networked device.".to_string(),
        ],
        headers: vec![
            ("format", FORMAT.to_string()),
            ("keyid", key.keyid().to_string()),
            ("key type", keytype.clone()),
            ("role", info.role.clone()),
            ("content", describe_payload(key.key_type(), payload.len())),
            (
                "created",
                info.created_at.as_deref().unwrap_or("unknown").to_string(),
            ),
            ("printed", info.printed_at.clone()),
            ("from", info.source.clone()),
        ],
        restore: vec![
            "To restore (every line and the keyid are verified):".to_string(),
            format!(
                "  signer keys restore --from SHEET.txt --keys root.keys.tgz --role {}",
                info.role
            ),
            "  (only the numbered lines, typed into a file: --groups-file FILE --keyid ID)"
                .to_string(),
        ],
        hex: &hex,
        qr_type: &keytype,
        qr_hex: &qr_hex,
        keyid: key.keyid(),
    })
}

/// A parsed sheet (secret: the payload is zeroized on drop).
#[derive(Default)]
pub struct ParsedSheet {
    /// The keyid on the sheet, if any.
    pub keyid: Option<String>,
    /// The key type on the sheet, if any.
    pub keytype: Option<String>,
    /// Whether the key came from scanned QR texts (not from numbered lines).
    pub from_qr: bool,
    payload: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ParsedSheet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedSheet")
            .field("keyid", &self.keyid)
            .field("keytype", &self.keytype)
            .field(
                "payload",
                &format_args!("{} bytes, redacted", self.payload.len()),
            )
            .finish()
    }
}

/// The value of a `name: value` line (name compared without case), if `line` is one.
pub fn header_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
}

/// Splits `"007: xxxx … | cccc"` into (7, rest) if the line starts with a number and `:`.
fn group_line(line: &str) -> Option<(&str, &str)> {
    let digits = line
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(line.len());
    if digits == 0 {
        return None;
    }
    let rest = line[digits..].trim_start();
    let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('.'))?;
    Some((&line[..digits], rest))
}

/// Parses a sheet, a file of typed lines, or scanned QR texts.
pub fn parse(text: &str) -> Result<ParsedSheet, SheetError> {
    let mut sheet = ParsedSheet::default();
    let mut declared_lines: Option<usize> = None;
    let mut groups: Vec<(usize, Zeroizing<String>)> = Vec::new();
    let mut qr: Vec<(usize, usize, Zeroizing<String>)> = Vec::new();
    let mut problems = Vec::new();
    let mut qr_keyid: Option<String> = None;
    let mut qr_type: Option<String> = None;

    for raw in text.lines() {
        let line = raw.trim().trim_start_matches('\u{0c}').trim();
        if line.is_empty() {
            continue;
        }
        if let Some(v) = header_value(line, "keyid") {
            sheet.keyid = Some(v.to_ascii_lowercase());
            continue;
        }
        if let Some(v) = header_value(line, "key type") {
            sheet.keytype = Some(v.to_string());
            continue;
        }
        if let Some(v) = header_value(line, "lines") {
            declared_lines = v.parse().ok();
            continue;
        }
        let upper_prefix = line
            .get(..QR_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(QR_PREFIX));
        if upper_prefix
            && line
                .get(QR_PREFIX.len()..)
                .is_some_and(|r| r.starts_with(' '))
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let part = fields.get(3).and_then(|p| {
                let (i, n) = p.split_once('/')?;
                Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?))
            });
            match (fields.len(), part) {
                (5, Some((i, n))) if i >= 1 && i <= n => {
                    let kid = fields[2].to_ascii_lowercase();
                    let kt = fields[1].to_string();
                    if qr_keyid.get_or_insert_with(|| kid.clone()) != &kid
                        || qr_type.get_or_insert_with(|| kt.clone()) != &kt
                    {
                        problems.push(format!(
                            "QR part {i}/{n} belongs to another key than the other parts"
                        ));
                    }
                    qr.push((i, n, Zeroizing::new(fields[4].to_ascii_lowercase())));
                }
                _ => problems.push(
                    "a QR text is not `OTK1 <TYPE> <KEYID> <part>/<parts> <HEX>`".to_string(),
                ),
            }
            continue;
        }
        let Some((num, rest)) = group_line(line) else {
            continue;
        };
        let Ok(n) = num.parse::<usize>() else {
            problems.push(format!("line number `{num}` is too large"));
            continue;
        };
        let Some((digits, check)) = rest.rsplit_once('|') else {
            problems.push(format!(
                "line {n}: no check code (expected `| cccc` at the end of the line)"
            ));
            continue;
        };
        let mut hex = Zeroizing::new(String::with_capacity(LINE_CHARS));
        let mut group_count = 0;
        let mut bad_char = false;
        for g in digits.split_whitespace() {
            group_count += 1;
            for c in g.chars() {
                if c.is_ascii_hexdigit() {
                    hex.push(c.to_ascii_lowercase());
                } else {
                    bad_char = true;
                }
            }
        }
        if bad_char {
            problems.push(format!(
                "line {n}: contains a character that is not a hex digit (0-9, a-f); re-read \
                 line {n} on the sheet"
            ));
            continue;
        }
        let check = check.trim().to_ascii_lowercase();
        if check != check_code(n, &hex) {
            let mut msg = format!(
                "line {n}: check code does not match; re-read line {n} on the sheet (a digit \
                 or its check code was copied wrongly"
            );
            if hex.len() != LINE_CHARS && group_count != GROUPS_PER_LINE {
                let _ = write!(
                    msg,
                    ", and it has {group_count} groups where a full line has {GROUPS_PER_LINE}"
                );
            }
            msg.push(')');
            problems.push(msg);
            continue;
        }
        groups.push((n, hex));
    }

    if !qr.is_empty() && groups.is_empty() {
        return finish_qr(sheet, qr, qr_keyid, qr_type, problems);
    }
    if groups.is_empty() {
        return Err(if problems.is_empty() {
            SheetError::NoLines
        } else {
            SheetError::BadLines(problems)
        });
    }
    groups.sort_by_key(|(n, _)| *n);
    let highest = groups.last().map(|(n, _)| *n).unwrap_or(0);
    let expected = declared_lines.unwrap_or(highest).max(highest);
    let bad: std::collections::BTreeSet<usize> = problems
        .iter()
        .filter_map(|p| p.strip_prefix("line ")?.split(':').next()?.parse().ok())
        .collect();
    for w in groups.windows(2) {
        if w[0].0 == w[1].0 {
            problems.push(format!("line {} appears twice", w[0].0));
        }
    }
    for n in 1..=expected {
        if !groups.iter().any(|(g, _)| *g == n) && !bad.contains(&n) {
            problems.push(format!("line {n} is missing"));
        }
    }
    for (n, hex) in &groups {
        if *n < expected && hex.len() != LINE_CHARS {
            problems.push(format!(
                "line {n}: has {} hex digits where a full line has {LINE_CHARS}",
                hex.len()
            ));
        }
    }
    if let Some((n, hex)) = groups.last() {
        if hex.len() % 2 != 0 || hex.is_empty() {
            problems.push(format!("line {n}: has an odd number of hex digits"));
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| line_number_of(p));
        return Err(SheetError::BadLines(problems));
    }
    let total: usize = groups.iter().map(|(_, h)| h.len()).sum();
    let mut all = Zeroizing::new(String::with_capacity(total));
    for (_, h) in &groups {
        all.push_str(h);
    }
    sheet.payload = Zeroizing::new(hex::decode(all.as_bytes()).map_err(|_| {
        SheetError::BadLines(vec!["the lines do not form whole bytes".to_string()])
    })?);
    Ok(sheet)
}

fn line_number_of(problem: &str) -> usize {
    problem
        .strip_prefix("line ")
        .and_then(|r| {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            r[..end].parse().ok()
        })
        .unwrap_or(usize::MAX)
}

fn finish_qr(
    mut sheet: ParsedSheet,
    mut qr: Vec<(usize, usize, Zeroizing<String>)>,
    qr_keyid: Option<String>,
    qr_type: Option<String>,
    mut problems: Vec<String>,
) -> Result<ParsedSheet, SheetError> {
    qr.sort_by_key(|(i, _, _)| *i);
    let n = qr[0].1;
    if qr.iter().any(|(_, m, _)| *m != n) {
        problems.push("the QR parts disagree on how many parts there are".to_string());
    }
    for i in 1..=n {
        match qr.iter().filter(|(j, _, _)| *j == i).count() {
            0 => problems.push(format!("QR part {i} of {n} is missing")),
            1 => {}
            _ => problems.push(format!("QR part {i} of {n} appears twice")),
        }
    }
    if !problems.is_empty() {
        return Err(SheetError::BadLines(problems));
    }
    let mut all = Zeroizing::new(String::new());
    for (_, _, h) in &qr {
        all.push_str(h);
    }
    let decoded = Zeroizing::new(hex::decode(all.as_bytes()).map_err(|_| {
        SheetError::BadLines(vec!["the QR texts are not whole hex bytes".to_string()])
    })?);
    let is_rsa = qr_type
        .as_deref()
        .is_some_and(|t| KeyType::parse(t).ok() == Some(KeyType::Rsa));
    sheet.from_qr = true;
    sheet.payload = if is_rsa {
        rsa_der_to_pem(&decoded)
    } else {
        decoded
    };
    match (&sheet.keyid, qr_keyid) {
        (Some(a), Some(b)) if *a != b => {
            return Err(SheetError::KeyIdConflict {
                given: a.clone(),
                sheet: b,
            })
        }
        (None, b) => sheet.keyid = b,
        _ => {}
    }
    if sheet.keytype.is_none() {
        sheet.keytype = qr_type;
    }
    Ok(sheet)
}

impl ParsedSheet {
    /// A sheet read by other means (e.g. Shamir shares combined): `payload` as
    /// [`payload`] makes it.
    pub fn new(keyid: &KeyId, keytype: &str, payload: Zeroizing<Vec<u8>>) -> ParsedSheet {
        ParsedSheet {
            keyid: Some(keyid.to_string()),
            keytype: Some(keytype.to_string()),
            from_qr: false,
            payload,
        }
    }

    /// The bytes the lines (or QR texts) hold (secret).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Rebuilds the private key and checks its keyid against the sheet and `expected`
    /// (from the command line; at least one of the two is required).
    pub fn rebuild(&self, expected: Option<&KeyId>) -> Result<PrivateKey, SheetError> {
        let sheet_id = match &self.keyid {
            Some(k) => Some(KeyId::parse(k).map_err(|_| SheetError::BadKeyId)?),
            None => None,
        };
        let want = match (expected, sheet_id) {
            (Some(e), Some(s)) if *e != s => {
                return Err(SheetError::KeyIdConflict {
                    given: e.to_string(),
                    sheet: s.to_string(),
                })
            }
            (Some(e), _) => e.clone(),
            (None, Some(s)) => s,
            (None, None) => return Err(SheetError::NoKeyId),
        };
        let rsa_pem = self.payload.starts_with(b"-----BEGIN");
        let keytype = match &self.keytype {
            Some(t) => t.clone(),
            None if rsa_pem => "RSA".to_string(),
            None => "ED25519".to_string(),
        };
        if keytype.is_empty() || !keytype.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SheetError::BadKeyType(keytype));
        }
        let kt = KeyType::parse(&keytype).map_err(|_| SheetError::BadKeyType(keytype.clone()))?;
        let bad = |reason: &str| SheetError::BadKey {
            keytype: keytype.clone(),
            reason: reason.to_string(),
        };
        // The `.sec` JSON, built in a buffer sized up front (no stray copies).
        let mut json = Zeroizing::new(Vec::with_capacity(self.payload.len() * 2 + 128));
        json.extend_from_slice(b"{\"keytype\":");
        shared::canonical::write_string(keytype.as_bytes(), &mut json);
        json.extend_from_slice(b",\"keyval\":{\"private\":");
        match kt {
            KeyType::Ed25519 => {
                if self.payload.len() != 32 {
                    return Err(bad(&format!(
                        "an ED25519 seed is 32 bytes, the lines hold {}",
                        self.payload.len()
                    )));
                }
                let hex = Zeroizing::new(hex::encode(&self.payload[..]));
                shared::canonical::write_string(hex.as_bytes(), &mut json);
            }
            KeyType::Rsa => {
                if !rsa_pem || std::str::from_utf8(&self.payload).is_err() {
                    return Err(bad("the content is not a PEM text"));
                }
                shared::canonical::write_string(&self.payload, &mut json);
            }
        }
        json.extend_from_slice(b"}}");
        let key = PrivateKey::from_json(&json).map_err(|e| bad(&e.to_string()))?;
        if *key.keyid() != want {
            return Err(SheetError::KeyIdMismatch {
                expected: want,
                actual: key.keyid().clone(),
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SheetInfo {
        SheetInfo {
            role: "root".into(),
            created_at: Some("2026-03-01T10:20:30Z".into()),
            printed_at: "2026-04-01T00:00:00Z".into(),
            source: "root.keys.tgz".into(),
        }
    }

    fn seed_key() -> PrivateKey {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        PrivateKey::ed25519_from_seed(&seed)
    }

    #[test]
    fn ed25519_round_trip_and_layout() {
        let key = seed_key();
        let sheet = render(&key, &info()).unwrap();
        assert!(sheet.contains(
            "keyid:     a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
        ));
        let first = format!(
            " 001: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f | {}",
            check_code(1, "000102030405060708090a0b0c0d0e0f")
        );
        assert!(sheet.lines().any(|l| l == first), "{}", &sheet[..]);
        assert!(sheet.contains("QR code 1 of 1"));
        assert!(!sheet.contains('\u{0c}'));
        for l in sheet.lines() {
            assert!(l.chars().count() <= 80, "line too wide: {l}");
        }
        let parsed = parse(&sheet).unwrap();
        let back = parsed.rebuild(None).unwrap();
        assert_eq!(back.keyid(), key.keyid());
        assert_eq!(&back.to_json()[..], &key.to_json()[..]);
    }

    #[test]
    fn check_codes_catch_typos_by_line() {
        let key = seed_key();
        let sheet = render(&key, &info()).unwrap();
        // Change one digit of line 2.
        let edited: String = sheet
            .lines()
            .map(|l| {
                if l.starts_with(" 002:") {
                    l.replacen("1011", "1012", 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        match parse(&edited).unwrap_err() {
            SheetError::BadLines(p) => {
                assert_eq!(p.len(), 1, "{p:?}");
                assert!(p[0].starts_with("line 2: check code"), "{p:?}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn missing_and_swapped_lines() {
        let key = seed_key();
        let sheet = render(&key, &info()).unwrap();
        let without: String = sheet
            .lines()
            .filter(|l| !l.starts_with(" 001:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            parse(&without).unwrap_err(),
            SheetError::BadLines(vec!["line 1 is missing".into()])
        );
        // Swapping the numbers of two lines breaks both check codes.
        let swapped = sheet
            .replace(" 001:", " 00X:")
            .replace(" 002:", " 001:")
            .replace(" 00X:", " 002:");
        match parse(&swapped).unwrap_err() {
            SheetError::BadLines(p) => assert_eq!(p.len(), 2, "{p:?}"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn typed_groups_without_header_need_keyid() {
        let key = seed_key();
        let sheet = render(&key, &info()).unwrap();
        let typed: String = sheet
            .lines()
            .filter(|l| l.trim_start().starts_with("00"))
            .map(|l| l.to_uppercase())
            .collect::<Vec<_>>()
            .join("\n");
        let parsed = parse(&typed).unwrap();
        assert_eq!(parsed.rebuild(None).unwrap_err(), SheetError::NoKeyId);
        let back = parsed.rebuild(Some(key.keyid())).unwrap();
        assert_eq!(back.keyid(), key.keyid());
        let other = PrivateKey::ed25519_from_seed(&[9; 32]);
        assert!(matches!(
            parsed.rebuild(Some(other.keyid())).unwrap_err(),
            SheetError::KeyIdMismatch { .. }
        ));
    }

    #[test]
    fn qr_text_restores() {
        let key = seed_key();
        let sheet = render(&key, &info()).unwrap();
        let hex = hex::encode(super::payload(&key).unwrap().as_slice());
        let text = format!(
            "{QR_PREFIX} ED25519 {} 1/1 {}\n",
            key.keyid().as_str().to_uppercase(),
            hex.to_uppercase()
        );
        assert!(sheet.contains(&format!("{} characters", text.trim_end().len())));
        let back = parse(&text).unwrap().rebuild(None).unwrap();
        assert_eq!(back.keyid(), key.keyid());
        let broken = format!("{QR_PREFIX} ED25519 {} 2/2 AB\n", key.keyid());
        assert!(matches!(
            parse(&broken).unwrap_err(),
            SheetError::BadLines(_)
        ));
    }

    #[test]
    fn non_hex_is_reported_without_echo() {
        let text = "keyid: 00\n001: 00g1 | abcd\n";
        match parse(text).unwrap_err() {
            SheetError::BadLines(p) => {
                assert!(p[0].contains("line 1") && !p[0].contains("00g1"), "{p:?}")
            }
            other => panic!("{other}"),
        }
        assert_eq!(parse("hello\n").unwrap_err(), SheetError::NoLines);
    }
}
