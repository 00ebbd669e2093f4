//! An input of NDJSON lines (a file, or query-api's export streamed over HTTP), split in place:
//! one line at a time, or a block of whole lines at a time for readers on several threads.

use std::io::Read;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::spare::Spare;

/// Bytes read from a file at a time: lines are taken from this buffer in place, so a read
/// costs one copy of the input whatever the lines' lengths.
const READ_CHUNK: usize = 256 << 10;
/// Bytes of whole lines handed out at a time by [`LineReader::next_lines`].
const BLOCK: usize = 256 << 10;

/// Splits its input into lines in place: a line borrows the reader's buffer until the next one
/// is asked for, so millions of them cost no allocation each.
pub struct LineReader {
    input: Input,
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer`.
    start: usize,
    /// How much of the unfinished input (from `start`) was searched for line ends already, and
    /// the end of the last whole line found there (0 for none): a line longer than a read is
    /// searched once, not again from its start after every read.
    searched: usize,
    whole: usize,
    spare: Spare<u8>,
    /// The input has nothing more to give.
    ended: bool,
}

pub enum Input {
    /// `None` only while a read has it on a blocking thread.
    File(Option<std::fs::File>),
    Http(BoxStream<'static, reqwest::Result<bytes::Bytes>>),
}

impl LineReader {
    pub fn new(input: Input) -> Self {
        Self {
            input,
            buffer: Vec::new(),
            start: 0,
            searched: 0,
            whole: 0,
            spare: Spare::default(),
            ended: false,
        }
    }

    /// The next line without its end (`\n` or `\r\n`); the last may lack one.
    pub async fn next_line(&mut self) -> Result<Option<&str>, String> {
        loop {
            let rest = &self.buffer[self.start..];
            let line = match memchr::memchr(b'\n', &rest[self.searched..]) {
                Some(at) => Some((self.searched + at, self.searched + at + 1)),
                None if self.ended && !rest.is_empty() => Some((rest.len(), rest.len())),
                None if self.ended => return Ok(None),
                None => None,
            };
            if let Some((length, taken)) = line {
                let start = self.start;
                self.start += taken;
                (self.searched, self.whole) = (0, 0);
                let text = std::str::from_utf8(&self.buffer[start..start + length]).map_err(|_| "not UTF-8")?;
                return Ok(Some(text.strip_suffix('\r').unwrap_or(text)));
            }
            self.searched = rest.len();
            self.fill().await?;
        }
    }

    /// The lines of the next block, whole, with their ends; `None` at the end.
    pub async fn next_lines(&mut self) -> Result<Option<Text>, String> {
        loop {
            let rest = &self.buffer[self.start..];
            if let Some(at) = memchr::memrchr(b'\n', &rest[self.searched..]) {
                self.whole = self.searched + at + 1;
            }
            self.searched = rest.len();
            let whole = match self.whole {
                _ if self.ended => rest.len(),
                whole if rest.len() >= BLOCK => whole,
                _ => 0,
            };
            if whole > 0 {
                // The block keeps this buffer; the unfinished line (no line end in it) moves to
                // a recycled one.
                let end = self.start + whole;
                let mut next = self.spare.take();
                next.extend_from_slice(&self.buffer[end..]);
                (self.searched, self.whole) = (next.len(), 0);
                let mut lines = std::mem::replace(&mut self.buffer, next);
                lines.truncate(end);
                lines.drain(..self.start);
                self.start = 0;
                return Ok(Some(Text {
                    bytes: lines,
                    spare: self.spare.clone(),
                }));
            }
            if self.ended {
                return Ok(None);
            }
            self.fill().await?;
        }
    }

    /// Keeps the unfinished line and appends what the input gives next.
    async fn fill(&mut self) -> Result<(), String> {
        self.buffer.drain(..self.start);
        self.start = 0;
        match &mut self.input {
            Input::File(file) => {
                // Read straight into the buffer on a blocking thread (tokio's `File` would read
                // into its own and copy).
                let (mut reading, mut buffer) = (file.take(), std::mem::take(&mut self.buffer));
                let (reading, buffer, read) = tokio::task::spawn_blocking(move || {
                    let read = read_more(reading.as_mut(), &mut buffer);
                    (reading, buffer, read)
                })
                .await
                .map_err(|e| format!("reading stopped: {e}"))?;
                (*file, self.buffer) = (reading, buffer);
                self.ended = read? == 0;
            }
            Input::Http(body) => match body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(format!("the export broke off: {e}")),
                None => self.ended = true,
            },
        }
        Ok(())
    }
}

/// Appends up to [`READ_CHUNK`] bytes of `file` to `buffer`: how many (0 at its end).
fn read_more(file: Option<&mut std::fs::File>, buffer: &mut Vec<u8>) -> Result<usize, String> {
    let file = file.ok_or("the file was lost by an earlier read")?;
    file.take(READ_CHUNK as u64)
        .read_to_end(buffer)
        .map_err(|e| e.to_string())
}

/// A block's lines. Given back to the reader's spares once read, so a long export cycles through
/// a few buffers instead of faulting in fresh memory for every block.
pub struct Text {
    bytes: Vec<u8>,
    spare: Spare<u8>,
}

impl std::ops::Deref for Text {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        self.spare.give(std::mem::take(&mut self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::{Input, LineReader};

    /// Lines longer than a read, blank lines, CRLF ends and a last line without its end.
    fn sample() -> (Vec<u8>, Vec<String>) {
        let long = "x".repeat(600 << 10);
        let lines = vec![
            "a".to_owned(),
            long.clone(),
            String::new(),
            "b".to_owned(),
            long,
            "c".to_owned(),
        ];
        let text = format!("a\n{}\r\n\nb\n{}\nc", lines[1], lines[4]);
        (text.into_bytes(), lines)
    }

    fn reader(name: &str, bytes: &[u8]) -> LineReader {
        let path = std::env::temp_dir().join(format!("partida-lines-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        std::fs::remove_file(&path).expect("remove");
        LineReader::new(Input::File(Some(file)))
    }

    #[tokio::test]
    async fn lines_come_whole_one_at_a_time() {
        let (bytes, expected) = sample();
        let mut lines = reader("one", &bytes);
        let mut read = Vec::new();
        while let Some(line) = lines.next_line().await.expect("a line") {
            read.push(line.to_owned());
        }
        assert_eq!(read, expected);
    }

    #[tokio::test]
    async fn blocks_hold_whole_lines_and_every_byte_once() {
        let (bytes, _) = sample();
        let mut lines = reader("blocks", &bytes);
        let mut read = Vec::new();
        while let Some(block) = lines.next_lines().await.expect("a block") {
            assert!(block.ends_with(b"\n") || read.len() + block.len() == bytes.len());
            read.extend_from_slice(&block);
        }
        assert_eq!(read, bytes);
    }
}
