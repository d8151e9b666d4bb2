//! Talking to the person: output, colors, and confirmation before anything changes.
//!
//! Every operation that creates a key or makes a signature asks for confirmation. On a
//! terminal the person types `yes`; with `--yes` the question is skipped (and the output
//! says so); with neither a terminal nor `--yes` the command refuses, so a script can never
//! sign by accident.

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

use crate::error::{Result, SignerError};

/// Output, input and the confirmation policy of one command run.
pub struct Ui {
    out: Box<dyn Write>,
    input: Box<dyn BufRead>,
    interactive: bool,
    color: bool,
    yes: bool,
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

    /// Writes one line of output.
    pub fn line(&mut self, text: impl AsRef<str>) {
        // Output errors (closed pipe) must not turn into a failed signing after the fact.
        let _ = writeln!(self.out, "{}", text.as_ref());
    }

    /// Writes text without a newline.
    pub fn print(&mut self, text: impl AsRef<str>) {
        let _ = write!(self.out, "{}", text.as_ref());
        let _ = self.out.flush();
    }

    /// Fails unless the person confirms `question` (or `--yes` was given).
    pub fn confirm(&mut self, question: &str) -> Result<()> {
        if self.yes {
            self.line(format!("{question} yes (--yes)"));
            return Ok(());
        }
        if !self.interactive {
            return Err(SignerError::NeedsConfirmation);
        }
        self.print(format!("{question} Type 'yes' to continue: "));
        let mut answer = String::new();
        self.input
            .read_line(&mut answer)
            .map_err(|e| SignerError::io("cannot read the answer from", "stdin", e))?;
        if answer.trim().eq_ignore_ascii_case("yes") {
            Ok(())
        } else {
            Err(SignerError::Declined)
        }
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
}
