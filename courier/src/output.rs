//! What a run says: results on stdout (text lines, JSON, generated pages) and warnings,
//! notes and request logs on stderr.
//!
//! Commands never touch the process's streams: they write through the [`Output`] of their
//! [`crate::Ctx`]. The entry point ([`crate::main_with_args`]) creates the one for the
//! process ([`Output::process`]); tests run commands with [`Output::captured`] and read what
//! they said. A closed stdout (`courier ... | head`) is not an error: writes to it are
//! dropped.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

/// One stream: a writer shared by the clones of an [`Output`], and whether it is a terminal.
#[derive(Clone)]
struct Sink {
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    terminal: bool,
}

impl Sink {
    fn new(writer: Box<dyn Write + Send>, terminal: bool) -> Sink {
        Sink {
            writer: Arc::new(Mutex::new(writer)),
            terminal,
        }
    }

    /// Writes `bytes` and flushes; errors (a closed pipe) are ignored.
    fn write(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = w.write_all(bytes).and_then(|()| w.flush());
    }

    fn line(&self, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.write(&bytes);
    }
}

/// Where a run writes: stdout for results, stderr for everything said on the side. Clones
/// share the streams (the API client logs through a clone).
#[derive(Clone)]
pub struct Output {
    stdout: Sink,
    stderr: Sink,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("stdout_terminal", &self.stdout.terminal)
            .field("stderr_terminal", &self.stderr.terminal)
            .finish_non_exhaustive()
    }
}

/// What a captured [`Output`] received (see [`Output::captured`]).
#[derive(Clone, Default)]
pub struct Captured {
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Captured {
    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        let b = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        let b = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// A writer appending to a shared buffer.
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    /// The process's stdout and stderr.
    pub fn process() -> Output {
        Output {
            stdout: Sink::new(Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
            stderr: Sink::new(Box::new(std::io::stderr()), std::io::stderr().is_terminal()),
        }
    }

    /// An output into memory (neither stream a terminal), and the handle to read it.
    pub fn captured() -> (Output, Captured) {
        let captured = Captured::default();
        let out = Output {
            stdout: Sink::new(Box::new(Buffer(captured.stdout.clone())), false),
            stderr: Sink::new(Box::new(Buffer(captured.stderr.clone())), false),
        };
        (out, captured)
    }

    /// A line of results on stdout.
    pub fn line(&self, text: &str) {
        self.stdout.line(text);
    }

    /// A value as pretty JSON on stdout.
    pub fn json(&self, value: &serde_json::Value) {
        self.line(&serde_json::to_string_pretty(value).unwrap_or_default());
    }

    /// Bytes as they are on stdout (a completion script, a man page).
    pub fn bytes(&self, bytes: &[u8]) {
        self.stdout.write(bytes);
    }

    /// `warning: TEXT` on stderr: something the person should look at; the run goes on.
    pub fn warning(&self, text: &str) {
        self.stderr.line(&format!("warning: {text}"));
    }

    /// `note: TEXT` on stderr: how an uncertain step turned out.
    pub fn note(&self, text: &str) {
        self.stderr.line(&format!("note: {text}"));
    }

    /// `error: TEXT` on stderr: why the run failed (the entry point's last word).
    pub fn error(&self, text: &str) {
        self.stderr.line(&format!("error: {text}"));
    }

    /// A line on stderr as it is (the request log of `-v`).
    pub fn log(&self, text: &str) {
        self.stderr.line(text);
    }

    /// Whether stdout is a terminal (colours).
    pub fn stdout_is_terminal(&self) -> bool {
        self.stdout.terminal
    }

    /// Whether stderr is a terminal (progress bars).
    pub fn stderr_is_terminal(&self) -> bool {
        self.stderr.terminal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_keeps_the_streams_apart() {
        let (out, seen) = Output::captured();
        out.line("result");
        out.json(&serde_json::json!({"a": 1}));
        out.bytes(b"raw");
        let clone = out.clone();
        clone.warning("careful");
        clone.note("it worked");
        clone.error("it failed");
        clone.log("> GET /x");
        assert_eq!(seen.stdout(), "result\n{\n  \"a\": 1\n}\nraw");
        assert_eq!(
            seen.stderr(),
            "warning: careful\nnote: it worked\nerror: it failed\n> GET /x\n"
        );
        assert!(!out.stdout_is_terminal() && !out.stderr_is_terminal());
    }
}
