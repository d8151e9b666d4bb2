//! The expiry radar: how many days each TUF document has left, which ones fall within the
//! warning and critical horizons, and calendar reminders (RFC 5545) for the ceremonies that
//! renew them.
//!
//! Pure: the caller hands in the documents' expiry times and "now" (an injectable clock);
//! nothing here reads a clock, a file or the network.

use serde::Serialize;

use crate::metadata::{SignedRoot, TargetsSummary, Timestamp};

/// One document for [`assess`]: what it is, when it expires, what renews it.
pub type Doc = (String, Timestamp, String);

/// What renews a root. Only a root key rotation moves a root's expiry (fioctl sets the new
/// root's expiry one year ahead when it replaces the root key); signing a root again, or any
/// other change, keeps the expiry it has.
pub const RENEW_ROOT: &str = "rotate the root key (`courier rotate-offline-key --role root`, then \
     `signer rotate-offline-key --role root`): the new root expires one year later";

/// What renews the production targets of `tag` (now at `version`). Their expiry is the one
/// the wave that released them was created with; re-signing them (a targets key rotation,
/// `sign-prod-targets`) keeps it, so only a new wave with a newer build renews it.
pub fn renew_production_targets(tag: &str, version: u64) -> String {
    format!(
        "release a wave of a build newer than v{version} to tag {tag} (`courier waves init NAME \
         VERSION {tag} -e DAYS`, `signer sign-wave`, `courier waves push`, `courier waves \
         complete NAME`): the tag takes the wave's expiry; re-signing keeps the old one"
    )
}

/// What renews a wave's targets: nothing but creating the wave again (a wave keeps the
/// expiry it was created with, and a completed wave passes it on to the tag).
pub fn renew_wave(name: &str) -> String {
    format!(
        "a wave keeps the expiry it was created with: cancel it (`courier waves cancel {name}`) \
         and release the same build in a new wave (`courier waves init NEW-NAME VERSION TAG -e \
         DAYS`, `signer sign-wave`, `courier waves push`)"
    )
}

/// A CI root and its production root as `{prefix}CI root vN` / `{prefix}production root vN`,
/// renewed as [`RENEW_ROOT`] says.
pub fn root_docs(prefix: &str, ci: &SignedRoot, prod: Option<&SignedRoot>) -> Vec<Doc> {
    std::iter::once(("CI", ci))
        .chain(prod.map(|p| ("production", p)))
        .map(|(kind, r)| {
            (
                format!("{prefix}{kind} root v{}", r.signed.version),
                r.signed.expires,
                RENEW_ROOT.to_string(),
            )
        })
        .collect()
}

/// Production targets per tag as `production targets TAG vN`, renewed as
/// [`renew_production_targets`] says.
pub fn production_targets_docs<'a>(
    docs: impl IntoIterator<Item = (&'a str, &'a TargetsSummary)>,
) -> Vec<Doc> {
    docs.into_iter()
        .map(|(tag, t)| {
            (
                format!("production targets {tag} v{}", t.version),
                t.expires,
                renew_production_targets(tag, t.version),
            )
        })
        .collect()
}

/// Wave targets as `wave NAME vN`, renewed as [`renew_wave`] says.
pub fn wave_docs<'a>(docs: impl IntoIterator<Item = (&'a str, &'a TargetsSummary)>) -> Vec<Doc> {
    docs.into_iter()
        .map(|(name, t)| {
            (
                format!("wave {name} v{}", t.version),
                t.expires,
                renew_wave(name),
            )
        })
        .collect()
}

/// Why a horizon could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Not `N`, `Nd` or `Nw` with a non-negative whole N.
    #[error("`{0}` is not a number of days (examples: 60d, 14d, 8w, 30)")]
    BadHorizon(String),
    /// The critical horizon is further away than the warning horizon.
    #[error("the critical horizon ({critical} days) must not be longer than the warning horizon ({warn} days)")]
    Order {
        /// Warning horizon in days.
        warn: i64,
        /// Critical horizon in days.
        critical: i64,
    },
}

/// Parses a horizon: `60d`, `8w` or plain `60` (days).
pub fn parse_days(s: &str) -> Result<i64, ExpiryError> {
    let t = s.trim();
    let (num, mul) = if let Some(n) = t.strip_suffix(['d', 'D']) {
        (n, 1)
    } else if let Some(n) = t.strip_suffix(['w', 'W']) {
        (n, 7)
    } else {
        (t, 1)
    };
    num.parse::<u32>()
        .map(|n| i64::from(n) * mul)
        .map_err(|_| ExpiryError::BadHorizon(s.to_string()))
}

/// The warning and critical horizons, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Horizons {
    /// Warn when a document expires within this many days.
    pub warn_days: i64,
    /// Critical (non-zero exit for cron) within this many days.
    pub critical_days: i64,
}

impl Horizons {
    /// Checks that critical ≤ warn.
    pub fn new(warn_days: i64, critical_days: i64) -> Result<Horizons, ExpiryError> {
        if critical_days > warn_days {
            return Err(ExpiryError::Order {
                warn: warn_days,
                critical: critical_days,
            });
        }
        Ok(Horizons {
            warn_days,
            critical_days,
        })
    }
}

/// How urgent one document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Already expired: devices refuse it now.
    Expired,
    /// Within the critical horizon.
    Critical,
    /// Within the warning horizon.
    Warning,
    /// Further away.
    Ok,
}

impl Level {
    /// The word printed for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Expired => "EXPIRED",
            Level::Critical => "CRITICAL",
            Level::Warning => "warning",
            Level::Ok => "ok",
        }
    }
}

/// One document on the radar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Item {
    /// What it is, e.g. `CI root v5`, `production targets main`, `wave w1`.
    pub what: String,
    /// Its expiry.
    pub expires: Timestamp,
    /// Whole days from now until it expires (negative once expired).
    pub days_left: i64,
    /// How urgent it is.
    pub level: Level,
    /// What renews it (e.g. a root rotation ceremony), printed and put in the calendar.
    pub renew: String,
}

/// Places every `(what, expires, renew)` on the radar at `now`, most urgent first.
pub fn assess(docs: Vec<(String, Timestamp, String)>, now: &Timestamp, h: &Horizons) -> Vec<Item> {
    let mut items: Vec<Item> = docs
        .into_iter()
        .map(|(what, expires, renew)| {
            let days_left = now.days_until(&expires);
            let level = if expires <= *now {
                Level::Expired
            } else if days_left < h.critical_days {
                Level::Critical
            } else if days_left < h.warn_days {
                Level::Warning
            } else {
                Level::Ok
            };
            Item {
                what,
                expires,
                days_left,
                level,
                renew,
            }
        })
        .collect();
    items.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.what.cmp(&b.what)));
    items
}

/// Whether anything is expired or within the critical horizon.
pub fn any_critical(items: &[Item]) -> bool {
    items.iter().any(|i| i.level <= Level::Critical)
}

/// One line per item: `CI root v5   expires 2027-03-01 (97 days)  ok`.
pub fn lines(items: &[Item]) -> Vec<String> {
    let width = items
        .iter()
        .map(|i| i.what.chars().count())
        .max()
        .unwrap_or(0);
    items
        .iter()
        .map(|i| {
            let n = i.days_left.abs();
            let unit = if n == 1 { "day" } else { "days" };
            let days = if i.level == Level::Expired {
                format!("expired {n} {unit} ago")
            } else {
                format!("{n} {unit} left")
            };
            let mut l = format!(
                "{:<width$}  expires {} ({days})  {}",
                i.what,
                i.expires.date(),
                i.level.as_str()
            );
            if i.level != Level::Ok {
                l.push_str(&format!(" — {}", i.renew));
            }
            l
        })
        .collect()
}

/// `YYYYMMDDTHHMMSSZ` (RFC 5545 UTC DATE-TIME).
fn ics_datetime(t: &Timestamp) -> String {
    let s = t.to_string(); // RFC 3339, Z, maybe a fraction
    let digits: String = s
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}Z")
}

/// Escapes TEXT values (RFC 5545 §3.3.11).
fn ics_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            ';' => o.push_str("\\;"),
            ',' => o.push_str("\\,"),
            '\n' => o.push_str("\\n"),
            '\r' => {}
            c => o.push(c),
        }
    }
    o
}

/// Folds one content line at 75 octets (never inside a UTF-8 character) and ends it with
/// CRLF (RFC 5545 §3.1).
pub fn fold_line(line: &str, out: &mut String) {
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
}

/// Lower-case ASCII letters and digits of `s`, anything else as `-` (for UIDs).
fn uid_slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// An RFC 5545 calendar with one event per item that is not already expired: the ceremony
/// day is `critical_days` before the expiry (today if that has passed), all day, with an
/// alarm a week before. `factory` goes in the summaries and UIDs; `now` is DTSTAMP.
pub fn ics(items: &[Item], factory: &str, now: &Timestamp, h: &Horizons) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//offline-tuf//expiry radar//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
    ];
    for i in items.iter().filter(|i| i.level != Level::Expired) {
        let mut day = i.expires.plus_days(-h.critical_days);
        if day < *now {
            day = *now;
        }
        let end = day.plus_days(1);
        let (slug, fslug) = (uid_slug(&i.what), uid_slug(factory));
        lines.extend([
            "BEGIN:VEVENT".to_string(),
            format!("UID:{slug}-{}@{fslug}.offline-tuf", i.expires.unix()),
            format!("DTSTAMP:{}", ics_datetime(now)),
            format!("DTSTART;VALUE=DATE:{}", day.date().replace('-', "")),
            format!("DTEND;VALUE=DATE:{}", end.date().replace('-', "")),
            format!(
                "SUMMARY:{}",
                ics_text(&format!("TUF ceremony for {factory}: {}", i.what))
            ),
            format!(
                "DESCRIPTION:{}",
                ics_text(&format!(
                    "{} of factory {factory} expires {}. {}.",
                    i.what, i.expires, i.renew
                ))
            ),
            "BEGIN:VALARM".to_string(),
            "ACTION:DISPLAY".to_string(),
            "TRIGGER:-P7D".to_string(),
            format!(
                "DESCRIPTION:{}",
                ics_text(&format!("TUF ceremony in a week: {}", i.what))
            ),
            "END:VALARM".to_string(),
            "END:VEVENT".to_string(),
        ]);
    }
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::new();
    for l in &lines {
        fold_line(l, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn horizons_parse_and_levels() {
        assert_eq!(parse_days("60d").unwrap(), 60);
        assert_eq!(parse_days("2w").unwrap(), 14);
        assert_eq!(parse_days("7").unwrap(), 7);
        assert!(parse_days("-1d").is_err() && parse_days("soon").is_err());
        assert!(Horizons::new(14, 60).is_err());
        let h = Horizons::new(60, 14).unwrap();
        let now = t("2026-01-01T00:00:00Z");
        let items = assess(
            vec![
                ("a".into(), t("2026-12-01T00:00:00Z"), "r".into()),
                ("b".into(), t("2026-02-01T00:00:00Z"), "r".into()),
                ("c".into(), t("2026-01-10T00:00:00Z"), "r".into()),
                ("d".into(), t("2025-12-31T00:00:00Z"), "r".into()),
                ("e".into(), t("2026-01-01T00:00:00Z"), "r".into()),
            ],
            &now,
            &h,
        );
        let got: Vec<(&str, Level, i64)> = items
            .iter()
            .map(|i| (i.what.as_str(), i.level, i.days_left))
            .collect();
        assert_eq!(
            got,
            vec![
                ("d", Level::Expired, -1),
                ("e", Level::Expired, 0),
                ("c", Level::Critical, 9),
                ("b", Level::Warning, 31),
                ("a", Level::Ok, 334),
            ]
        );
        assert!(any_critical(&items));
        assert!(!any_critical(&items[3..]));
        assert!(lines(&items)[0].contains("(expired 1 day ago)  EXPIRED — r"));
    }

    #[test]
    fn calendar_is_rfc5545() {
        let h = Horizons::new(60, 14).unwrap();
        let now = t("2026-01-01T08:30:00Z");
        let long = "production targets ".to_string() + &"x".repeat(80) + "é";
        let items = assess(
            vec![
                (
                    "CI root v5".into(),
                    t("2026-06-30T00:00:00Z"),
                    "rotate".into(),
                ),
                (long, t("2026-01-05T00:00:00Z"), "sign, again; now".into()),
                ("gone".into(), t("2025-01-05T00:00:00Z"), "x".into()),
            ],
            &now,
            &h,
        );
        let cal = ics(&items, "acme", &now, &h);
        assert!(cal.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(cal.ends_with("END:VCALENDAR\r\n"));
        assert_eq!(cal.matches("BEGIN:VEVENT").count(), 2);
        assert_eq!(cal.matches("BEGIN:VALARM").count(), 2);
        assert!(cal.contains("DTSTAMP:20260101T083000Z\r\n"));
        // 14 days before the expiry, and today when that has passed.
        assert!(cal.contains("DTSTART;VALUE=DATE:20260616\r\n"));
        assert!(cal.contains("DTSTART;VALUE=DATE:20260101\r\n"));
        assert!(cal.contains("UID:ci-root-v5-"));
        assert!(cal.contains("sign\\, again\\; now"));
        // No bare LF, every physical line at most 75 octets, folding round-trips.
        assert!(!cal.replace("\r\n", "").contains('\n'));
        for l in cal.split("\r\n") {
            assert!(l.len() <= 75, "{l}");
        }
        let unfolded = cal.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("{}é", "x".repeat(80))));
    }
}
