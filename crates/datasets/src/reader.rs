//! The one line reader every loader uses: line numbers, `path:line` errors, strict or lenient mode,
//! whole-file loading and streaming.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

use crate::error::{DataError, ParseError, Result};

/// How many of the skipped lines' errors a lenient read keeps for its report.
pub const KEPT_ERRORS: usize = 16;

/// Whether a bad line stops the read (strict, the default) or is skipped and counted (lenient).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Skip malformed lines instead of failing; they are counted in [`ReadStats::bad`].
    pub lenient: bool,
}

impl ReadOptions {
    /// Fail on the first malformed line.
    pub fn strict() -> Self {
        Self { lenient: false }
    }
    /// Skip malformed lines and count them.
    pub fn lenient() -> Self {
        Self { lenient: true }
    }
}

/// A line format: turns one line of text into a record.
///
/// `Ok(None)` means the line is skipped on purpose (a header, a filtered or duplicate line); blank
/// lines never reach the format.
pub trait LineFormat {
    /// The typed record one line gives.
    type Record;

    /// Parses one line (without its line terminator). `line_no` is 1-based.
    fn parse_line(
        &mut self,
        line_no: usize,
        line: &str,
    ) -> Result<Option<Self::Record>, ParseError>;

    /// Reads a whole file into memory.
    fn load(self, path: impl AsRef<Path>, options: ReadOptions) -> Result<Loaded<Self::Record>>
    where
        Self: Sized,
    {
        self.stream(path, options)?.collect_loaded()
    }

    /// Streams a file record by record (for files that do not fit in memory).
    fn stream(
        self,
        path: impl AsRef<Path>,
        options: ReadOptions,
    ) -> Result<RecordStream<Self, BufReader<File>>>
    where
        Self: Sized,
    {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(RecordStream::new(self, path, BufReader::new(file), options))
    }

    /// Reads records from any buffered reader; `name` stands for the path in error messages.
    fn load_reader<R: BufRead>(
        self,
        name: impl AsRef<Path>,
        reader: R,
        options: ReadOptions,
    ) -> Result<Loaded<Self::Record>>
    where
        Self: Sized,
    {
        RecordStream::new(self, name.as_ref(), reader, options).collect_loaded()
    }

    /// Reads records from text in memory (generated data, tests); `name` stands for the path.
    fn load_str(
        self,
        name: impl AsRef<Path>,
        text: &str,
        options: ReadOptions,
    ) -> Result<Loaded<Self::Record>>
    where
        Self: Sized,
    {
        self.load_reader(name, Cursor::new(text.as_bytes()), options)
    }
}

/// Counts from one read.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Lines read, blank ones included.
    pub lines: usize,
    /// Records produced.
    pub records: usize,
    /// Blank lines skipped.
    pub blank: usize,
    /// Lines the format skipped on purpose (headers, filters, duplicates).
    pub filtered: usize,
    /// Malformed lines skipped in lenient mode.
    pub bad: usize,
    /// The first [`KEPT_ERRORS`] errors of the skipped malformed lines.
    pub errors: Vec<DataError>,
}

/// The records of a whole file, with the read's counts.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The records, in file order.
    pub records: Vec<T>,
    /// Counts (lines, filtered, malformed lines skipped in lenient mode and their first errors).
    pub stats: ReadStats,
}

impl<T> Loaded<T> {
    /// The records, dropping the counts.
    pub fn into_records(self) -> Vec<T> {
        self.records
    }
}

/// An iterator over the records of one source. In strict mode it yields the first error and then
/// stops; in lenient mode it skips malformed lines and counts them in [`RecordStream::stats`].
pub struct RecordStream<F, R> {
    format: F,
    path: PathBuf,
    reader: R,
    options: ReadOptions,
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
    stats: ReadStats,
}

impl<F: LineFormat, R: BufRead> RecordStream<F, R> {
    /// Wraps a reader; `path` is used in error messages.
    pub fn new(format: F, path: &Path, reader: R, options: ReadOptions) -> Self {
        Self {
            format,
            path: path.to_path_buf(),
            reader,
            options,
            line_no: 0,
            buf: Vec::new(),
            done: false,
            stats: ReadStats::default(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Drains the stream into a [`Loaded`].
    pub fn collect_loaded(mut self) -> Result<Loaded<F::Record>> {
        let mut records = Vec::new();
        for item in self.by_ref() {
            records.push(item?);
        }
        Ok(Loaded {
            records,
            stats: self.stats,
        })
    }

    fn line_error(&self, source: ParseError) -> DataError {
        DataError::Line {
            path: self.path.clone(),
            line: self.line_no,
            source,
        }
    }
}

impl<F: LineFormat, R: BufRead> Iterator for RecordStream<F, R> {
    type Item = Result<F::Record>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line_no += 1;
                    self.stats.lines += 1;
                    let parsed = match std::str::from_utf8(&self.buf) {
                        Ok(text) => {
                            let line = text.strip_suffix('\n').unwrap_or(text);
                            let line = line.strip_suffix('\r').unwrap_or(line);
                            if line.trim().is_empty() {
                                self.stats.blank += 1;
                                continue;
                            }
                            self.format.parse_line(self.line_no, line)
                        }
                        Err(e) => Err(ParseError::Other(format!("invalid UTF-8 ({e})"))),
                    };
                    match parsed {
                        Ok(Some(record)) => {
                            self.stats.records += 1;
                            return Some(Ok(record));
                        }
                        Ok(None) => self.stats.filtered += 1,
                        Err(reason) => {
                            let err = self.line_error(reason);
                            if self.options.lenient {
                                self.stats.bad += 1;
                                if self.stats.errors.len() < KEPT_ERRORS {
                                    self.stats.errors.push(err);
                                }
                            } else {
                                self.done = true;
                                return Some(Err(err));
                            }
                        }
                    }
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(DataError::Io {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
        }
        None
    }
}
