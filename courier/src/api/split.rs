//! Reading a JSON object of documents (`{"name": {...}, ...}`) member by member as it
//! arrives, so that an answer of any size is never held whole: the answers of
//! `prod-targets/` and `wave-targets/` map a tag or wave to its targets document, and a
//! factory's documents add up to hundreds of megabytes.
//!
//! The splitter only finds where each member's value starts and ends (strings and escapes,
//! nesting); it hands the value's text, unchanged, to the caller, which parses it. It refuses
//! what a JSON parser would refuse at this level (a missing `:` or `,`, text after the
//! object, an unterminated value), a member name given twice, and a value larger than the
//! caller's limit. `null` (the server's "none") is an empty object.

use std::io::{self, BufRead, BufReader, Read};

/// Why an answer could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError<E> {
    /// Reading the answer failed.
    #[error("reading the answer failed: {0}")]
    Read(io::Error),
    /// The answer is not a JSON object of members.
    #[error("not a JSON object of documents: {0}")]
    Syntax(String),
    /// One value is larger than the limit.
    #[error("the document {name:?} is larger than {limit} bytes")]
    TooLarge {
        /// The member's name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// The caller refused a member (its error is the reason).
    #[error("a document was refused")]
    Member(E),
}

/// Calls `on_member(name, value_text)` for each member of the JSON object read from
/// `input`, in the order they arrive. Each value is at most `max_value` bytes.
pub fn for_each_member<E>(
    input: &mut dyn Read,
    max_value: usize,
    on_member: &mut dyn FnMut(String, Vec<u8>) -> Result<(), E>,
) -> Result<(), SplitError<E>> {
    let mut r = Bytes {
        inner: BufReader::with_capacity(1 << 20, input),
    };
    let syntax = |what: &str| SplitError::Syntax(what.to_string());
    match r.next_token()? {
        Some(b'{') => {}
        Some(b'n') => {
            r.expect(b"ull")?;
            return r.end();
        }
        _ => return Err(syntax("expected '{'")),
    }
    let mut seen = std::collections::HashSet::new();
    let mut first = true;
    loop {
        match r.next_token()? {
            Some(b'}') if first => return r.end(),
            Some(b'"') => {}
            _ => return Err(syntax("expected a member name")),
        }
        let mut raw_name = vec![b'"'];
        r.string_into(&mut raw_name, usize::MAX, "")?;
        let name: String = serde_json::from_slice(&raw_name)
            .map_err(|e| SplitError::Syntax(format!("a member name: {e}")))?;
        if !seen.insert(name.clone()) {
            return Err(SplitError::Syntax(format!("{name:?} is given twice")));
        }
        if r.next_token()? != Some(b':') {
            return Err(SplitError::Syntax(format!("expected ':' after {name:?}")));
        }
        let (value, after) = r.value(max_value, &name)?;
        on_member(name, value).map_err(SplitError::Member)?;
        first = false;
        match after {
            b',' => {}
            b'}' => return r.end(),
            _ => return Err(syntax("expected ',' or '}' after a member")),
        }
    }
}

/// A buffered byte reader with the few steps the splitter needs.
struct Bytes<'a> {
    inner: BufReader<&'a mut dyn Read>,
}

impl Bytes<'_> {
    fn byte<E>(&mut self) -> Result<Option<u8>, SplitError<E>> {
        let buf = self.inner.fill_buf().map_err(SplitError::Read)?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.inner.consume(1);
        Ok(Some(b))
    }

    /// The next byte that is not JSON whitespace.
    fn next_token<E>(&mut self) -> Result<Option<u8>, SplitError<E>> {
        loop {
            match self.byte()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => {}
                other => return Ok(other),
            }
        }
    }

    fn expect<E>(&mut self, text: &[u8]) -> Result<(), SplitError<E>> {
        for &want in text {
            if self.byte()? != Some(want) {
                return Err(SplitError::Syntax("unexpected text".into()));
            }
        }
        Ok(())
    }

    /// Only whitespace may follow the object.
    fn end<E>(&mut self) -> Result<(), SplitError<E>> {
        match self.next_token()? {
            None => Ok(()),
            Some(_) => Err(SplitError::Syntax("text after the object".into())),
        }
    }

    /// Appends the rest of a string (its opening quote already read) to `out`, closing
    /// quote included.
    fn string_into<E>(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        name: &str,
    ) -> Result<(), SplitError<E>> {
        loop {
            // Up to the next quote or backslash in one go.
            let stop = self.copy_until(out, max, name, "unterminated string", |buf| {
                memchr::memchr2(b'"', b'\\', buf)
            })?;
            match stop {
                Some(b'"') => return Ok(()),
                Some(_) => {
                    // A backslash: the escaped byte is taken as it is.
                    let escaped = self
                        .byte()?
                        .ok_or_else(|| SplitError::Syntax("unterminated string".into()))?;
                    out.push(escaped);
                }
                None => {}
            }
        }
    }

    /// Appends to `out` the buffered input up to and including the first byte `find` finds
    /// in it (or all of it when none); returns that byte. `cut` is the error at the end of
    /// the input; more than `max` bytes in `out` is [`SplitError::TooLarge`].
    fn copy_until<E>(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        name: &str,
        cut: &str,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Option<u8>, SplitError<E>> {
        let buf = self.inner.fill_buf().map_err(SplitError::Read)?;
        if buf.is_empty() {
            return Err(SplitError::Syntax(cut.to_string()));
        }
        let stop = find(buf);
        let take = stop.map_or(buf.len(), |i| i + 1);
        if out.len() + take > max {
            return Err(too_large(name, max));
        }
        out.extend_from_slice(&buf[..take]);
        let last = buf[take - 1];
        self.inner.consume(take);
        Ok(stop.map(|_| last))
    }

    /// One value (after its member's `:`): its text, and the token that follows it.
    fn value<E>(&mut self, max: usize, name: &str) -> Result<(Vec<u8>, u8), SplitError<E>> {
        let mut out = Vec::new();
        let first = self
            .next_token()?
            .ok_or_else(|| SplitError::Syntax(format!("no value for {name:?}")))?;
        out.push(first);
        match first {
            b'{' | b'[' => {
                let mut depth = 1usize;
                let cut = format!("{name:?} is cut short");
                while depth > 0 {
                    let stop = self.copy_until(&mut out, max, name, &cut, |buf| {
                        buf.iter()
                            .position(|&b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))
                    })?;
                    match stop {
                        Some(b'"') => self.string_into(&mut out, max, name)?,
                        Some(b'{' | b'[') => depth += 1,
                        Some(_) => depth -= 1,
                        None => {}
                    }
                }
                let after = self
                    .next_token()?
                    .ok_or_else(|| SplitError::Syntax("the object is cut short".into()))?;
                Ok((out, after))
            }
            b'"' => {
                self.string_into(&mut out, max, name)?;
                let after = self
                    .next_token()?
                    .ok_or_else(|| SplitError::Syntax("the object is cut short".into()))?;
                Ok((out, after))
            }
            _ => loop {
                // A number, `true`, `false` or `null`: up to the next delimiter.
                match self.byte()? {
                    Some(b @ (b',' | b'}')) => return Ok((out, b)),
                    Some(b' ' | b'\t' | b'\n' | b'\r') => {
                        let after = self
                            .next_token()?
                            .ok_or_else(|| SplitError::Syntax("the object is cut short".into()))?;
                        return Ok((out, after));
                    }
                    Some(b) if out.len() < 64 => out.push(b),
                    Some(_) => return Err(too_large(name, 64)),
                    None => return Err(SplitError::Syntax("the object is cut short".into())),
                }
            },
        }
    }
}

fn too_large<E>(name: &str, limit: usize) -> SplitError<E> {
    SplitError::TooLarge {
        name: name.to_string(),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, max: usize) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for_each_member::<()>(&mut text.as_bytes(), max, &mut |n, v| {
            out.push((n, String::from_utf8(v).unwrap()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn splits_members_with_their_text_unchanged() {
        let text = r#" { "a" : {"x": "}\"{", "y": [1, {"z": []}]},
            "b\u0041": {"signed":{}} , "c": "s\"", "d": 12 , "e":null}  "#;
        let got = split(text, 1 << 20).unwrap();
        assert_eq!(
            got,
            [
                ("a".into(), r#"{"x": "}\"{", "y": [1, {"z": []}]}"#.into()),
                ("bA".into(), r#"{"signed":{}}"#.into()),
                ("c".into(), r#""s\"""#.into()),
                ("d".into(), "12".into()),
                ("e".into(), "null".into()),
            ]
        );
        assert_eq!(split("{}", 10).unwrap(), []);
        assert_eq!(split(" null ", 10).unwrap(), []);
    }

    #[test]
    fn every_value_survives_any_buffer_boundary() {
        // The reader below gives one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.split_first() {
                    Some((&b, rest)) if !buf.is_empty() => {
                        buf[0] = b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let text = br#"{"t1":{"a":"\\\"}","b":[[]]},"t2":{}}"#;
        let mut got = Vec::new();
        for_each_member::<()>(&mut Trickle(text), 100, &mut |n, v| {
            got.push((n, v));
            Ok(())
        })
        .unwrap();
        assert_eq!(got[0].1, br#"{"a":"\\\"}","b":[[]]}"#);
        assert_eq!(got[1].1, b"{}");
    }

    #[test]
    fn refuses_what_is_not_an_object_of_members() {
        for (text, why) in [
            ("[]", "expected '{'"),
            (r#"{"a" {}}"#, "expected ':'"),
            (r#"{"a": {} "b": {}}"#, "expected ','"),
            (r#"{"a": {}} x"#, "text after the object"),
            (r#"{"a": {"#, "cut short"),
            (r#"{"a": "x"#, "unterminated"),
            (r#"{"a": {}, "a": {}}"#, "given twice"),
            (r#"{"a": {}, }"#, "expected a member name"),
            ("", "expected '{'"),
        ] {
            let err = split(text, 100).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        let err = split(r#"{"big": {"x": "0123456789"}}"#, 10).unwrap_err();
        assert!(err.contains("\"big\" is larger than 10 bytes"), "{err}");
    }
}
