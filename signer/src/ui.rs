//! Talking to the person: output, colors, and confirmation before anything changes.
//!
//! Every operation that creates a key or makes a signature asks for confirmation. On a
//! terminal the person types `yes`; with `--yes` the question is skipped (and the output
//! says so); with neither a terminal nor `--yes` the command refuses, so a script can never
//! sign by accident. Signatures over root drafts can require more: with
//! `--root-confirmation digest` the person types the first [`DIGEST_PREFIX`] characters of
//! the draft's digest shown on screen ([`Ui::confirm_digest`]).

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

use crate::error::{Result, SignerError};

/// How many leading characters of a draft's digest are typed to confirm a root signature.
pub const DIGEST_PREFIX: usize = 8;

/// Output, input and the confirmation policy of one command run.
pub struct Ui {
    out: Box<dyn Write>,
    input: Box<dyn BufRead>,
    interactive: bool,
    color: bool,
    yes: bool,
    digest_confirmation: bool,
}

impl Ui {
    /// The real terminal: stdout for output, stdin for answers; interactive when stdin and
    /// stdout are terminals, colored when stdout is a terminal and `NO_COLOR` is unset.
    pub fn terminal(yes: bool) -> Ui {
        let stdout_tty = std::io::stdout().is_terminal();
        let interactive = std::io::stdin().is_terminal() && stdout_tty;
        let color = stdout_tty && std::env::var_os("NO_COLOR").is_none();
        Ui {
            out: Box::new(std::io::stdout()),
            input: Box::new(std::io::BufReader::new(std::io::stdin())),
            interactive,
            color,
            yes,
            digest_confirmation: false,
        }
    }

    /// A scripted UI for tests: output goes to the returned buffer, answers come from
    /// `answers`; `interactive` pretends a terminal is attached.
    pub fn scripted(answers: &str, interactive: bool, yes: bool) -> (Ui, Captured) {
        let buf = Captured::default();
        let ui = Ui {
            out: Box::new(buf.clone()),
            input: Box::new(std::io::Cursor::new(answers.as_bytes().to_vec())),
            interactive,
            color: false,
            yes,
            digest_confirmation: false,
        };
        (ui, buf)
    }

    /// Whether output may use ANSI colors.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether `--yes` was given.
    pub fn yes(&self) -> bool {
        self.yes
    }

    /// Whether questions can be asked (a terminal is attached).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Asks the person to type `code` (any case) to accept one specific change. Unlike the
    /// other confirmations `--yes` does **not** answer it: it fails with
    /// [`SignerError::NeedsConfirmation`] without a terminal or with `--yes`.
    pub fn confirm_code(&mut self, question: &str, code: &str) -> Result<()> {
        if self.yes || !self.interactive {
            return Err(SignerError::NeedsConfirmation);
        }
        self.print(format!("{question} "));
        let answer = self.read_answer()?;
        let typed = answer.as_str();
        if typed.eq_ignore_ascii_case(code) {
            Ok(())
        } else if typed.is_empty() {
            Err(SignerError::Declined)
        } else {
            Err(SignerError::CodeMismatch {
                typed: typed.chars().take(16).collect(),
                expected: code.to_string(),
            })
        }
    }

    /// Whether root signatures are confirmed by typing the draft digest.
    pub fn digest_confirmation(&self) -> bool {
        self.digest_confirmation
    }

    /// Requires typing the digest prefix (instead of `yes`) in [`Ui::confirm_digest`].
    pub fn set_digest_confirmation(&mut self, on: bool) {
        self.digest_confirmation = on;
    }

    /// Writes one line of output.
    pub fn line(&mut self, text: impl AsRef<str>) {
        // Output errors (closed pipe) must not turn into a failed signing after the fact.
        let _ = writeln!(self.out, "{}", text.as_ref());
    }

    /// Writes bytes as they are (a completion script, a man page, the audit log's own
    /// lines).
    pub fn bytes(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
        let _ = self.out.flush();
    }

    /// Writes text without a newline.
    pub fn print(&mut self, text: impl AsRef<str>) {
        let _ = write!(self.out, "{}", text.as_ref());
        let _ = self.out.flush();
    }

    /// Fails unless the person confirms `question` (or `--yes` was given).
    pub fn confirm(&mut self, question: &str) -> Result<()> {
        match self.ask(question, "Type 'yes' to continue: ")? {
            Some(answer) if answer.eq_ignore_ascii_case("yes") => Ok(()),
            Some(_) => Err(SignerError::Declined),
            None => Ok(()),
        }
    }

    /// Confirms a signature over a root draft whose SHA-256 digest (hex) is `digest`: like
    /// [`Ui::confirm`], but with digest confirmation on the person must type the first
    /// [`DIGEST_PREFIX`] characters of `digest` (any case) instead of `yes`.
    pub fn confirm_digest(&mut self, question: &str, digest: &str) -> Result<()> {
        if !self.digest_confirmation {
            return self.confirm(question);
        }
        let expected: String = digest.chars().take(DIGEST_PREFIX).collect();
        let prompt =
            format!("Type the first {DIGEST_PREFIX} characters of the draft digest to continue: ");
        match self.ask(question, &prompt)? {
            Some(typed) if typed.eq_ignore_ascii_case(&expected) => Ok(()),
            Some(typed) if typed.is_empty() => Err(SignerError::Declined),
            Some(typed) => Err(SignerError::DigestMismatch {
                typed: typed.chars().take(2 * DIGEST_PREFIX).collect(),
                expected,
            }),
            None => Ok(()),
        }
    }

    /// Asks `question` followed by `prompt` and returns the trimmed answer; `None` when
    /// `--yes` answered it; an error without a terminal.
    fn ask(&mut self, question: &str, prompt: &str) -> Result<Option<String>> {
        if self.yes {
            self.line(format!("{question} yes (--yes)"));
            return Ok(None);
        }
        if !self.interactive {
            return Err(SignerError::NeedsConfirmation);
        }
        self.print(format!("{question} {prompt}"));
        Ok(Some(self.read_answer()?))
    }

    /// One line typed by the person, trimmed.
    fn read_answer(&mut self) -> Result<String> {
        let mut answer = String::new();
        self.input
            .read_line(&mut answer)
            .map_err(|e| SignerError::io("cannot read the answer from", "stdin", e))?;
        Ok(answer.trim().to_string())
    }
}

/// Output captured by a scripted [`Ui`].
#[derive(Clone, Default)]
pub struct Captured(Rc<RefCell<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_policy() {
        let (mut ui, out) = Ui::scripted("", false, true);
        ui.confirm("Sign?").unwrap();
        assert!(out.text().contains("(--yes)"));

        let (mut ui, _) = Ui::scripted("yes\n", false, false);
        assert!(matches!(
            ui.confirm("Sign?"),
            Err(SignerError::NeedsConfirmation)
        ));

        let (mut ui, _) = Ui::scripted("yes\n", true, false);
        ui.confirm("Sign?").unwrap();

        let (mut ui, _) = Ui::scripted("y\n", true, false);
        assert!(matches!(ui.confirm("Sign?"), Err(SignerError::Declined)));

        let (mut ui, _) = Ui::scripted("", true, false);
        assert!(matches!(ui.confirm("Sign?"), Err(SignerError::Declined)));
    }

    #[test]
    fn code_confirmation_is_never_answered_by_yes() {
        let (mut ui, _) = Ui::scripted("", false, true);
        assert!(matches!(
            ui.confirm_code("Accept?", "3f2a9c01"),
            Err(SignerError::NeedsConfirmation)
        ));
        let (mut ui, _) = Ui::scripted("3F2A9C01\n", true, false);
        ui.confirm_code("Accept?", "3f2a9c01").unwrap();
        let (mut ui, _) = Ui::scripted("yes\n", true, false);
        assert!(matches!(
            ui.confirm_code("Accept?", "3f2a9c01"),
            Err(SignerError::CodeMismatch { .. })
        ));
    }

    #[test]
    fn digest_confirmation_policy() {
        let digest = "3fa9c0d1e2b3";
        let typed = |answer: &str, interactive: bool, yes: bool, on: bool| {
            let (mut ui, out) = Ui::scripted(answer, interactive, yes);
            ui.set_digest_confirmation(on);
            (ui.confirm_digest("Sign?", digest), out.text())
        };
        // Off: plain yes.
        assert!(typed("yes\n", true, false, false).0.is_ok());
        // On: the digest prefix, any case; `yes` is no longer enough.
        let (r, shown) = typed("3FA9C0D1\n", true, false, true);
        r.unwrap();
        assert!(shown.contains("first 8 characters of the draft digest"));
        assert!(matches!(
            typed("yes\n", true, false, true).0,
            Err(SignerError::DigestMismatch { .. })
        ));
        let e = typed("3fa9c0d\n", true, false, true).0.unwrap_err();
        assert!(e
            .to_string()
            .contains("`3fa9c0d` is not the start of the draft digest 3fa9c0d1"));
        assert!(matches!(
            typed("\n", true, false, true).0,
            Err(SignerError::Declined)
        ));
        // --yes still works; without a terminal it still refuses.
        let (r, shown) = typed("", false, true, true);
        r.unwrap();
        assert!(shown.contains("(--yes)"));
        assert!(matches!(
            typed("3fa9c0d1\n", false, false, true).0,
            Err(SignerError::NeedsConfirmation)
        ));
    }
}
