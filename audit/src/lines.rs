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
            spare: Spare::default(),
            ended: false,
        }
    }

    /// The next line without its end (`\n` or `\r\n`); the last may lack one.
    pub async fn next_line(&mut self) -> Result<Option<&str>, String> {
        loop {
            let rest = &self.buffer[self.start..];
            let line = match memchr::memchr(b'\n', rest) {
                Some(length) => Some((self.start, length, length + 1)),
                None if self.ended && !rest.is_empty() => Some((self.start, rest.len(), rest.len())),
                None if self.ended => return Ok(None),
                None => None,
            };
            if let Some((start, length, taken)) = line {
                self.start += taken;
                let text = std::str::from_utf8(&self.buffer[start..start + length]).map_err(|_| "not UTF-8")?;
                return Ok(Some(text.strip_suffix('\r').unwrap_or(text)));
            }
            self.fill().await?;
        }
    }

    /// The lines of the next block, whole, with their ends; `None` at the end.
    pub async fn next_lines(&mut self) -> Result<Option<Text>, String> {
        loop {
            let rest = &self.buffer[self.start..];
            let whole = match memchr::memrchr(b'\n', rest) {
                _ if self.ended => rest.len(),
                Some(last) if rest.len() >= BLOCK => last + 1,
                _ => 0,
            };
            if whole > 0 {
                // The block keeps this buffer; the unfinished line moves to a recycled one.
                let end = self.start + whole;
                let mut next = self.spare.take();
                next.extend_from_slice(&self.buffer[end..]);
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
