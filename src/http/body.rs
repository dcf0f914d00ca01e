//! Body framing: a streaming validator for chunked transfer coding that
//! finds where a body ends without buffering it, and can also decode it.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError {
    pub reason: &'static str,
}

/// One step of the decoder over an input slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input consumed by this step (framing and data alike).
    pub consumed: usize,
    /// Chunk data within `input[..consumed]`, if this step consumed some.
    pub data: Option<Range<usize>>,
    /// The last chunk and the trailer section have been consumed.
    pub done: bool,
}

/// Streaming chunked-coding state machine (RFC 9112 §7.1): chunk sizes in hex
/// with overflow checks, extensions skipped, CRLF strictly required, trailers
/// accepted and bounded.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {}
    }

    /// Consumes a prefix of `input`. Call again with the rest while
    /// `consumed > 0` and not `done`; `consumed == 0` means more input is needed.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let _ = input;
        unimplemented!()
    }
}
