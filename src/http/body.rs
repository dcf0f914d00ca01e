//! Body framing: a streaming validator for chunked transfer coding that
//! finds where a body ends without buffering it, and can also decode it.
//! Content-Length and close-delimited bodies need no state machine: the
//! caller counts bytes or waits for EOF.

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

/// Longest chunk-size line extension part (after the hex digits) we accept:
/// extensions are ignored by everyone, so a long one is only an attack on
/// our patience.
pub const MAX_EXTENSION: usize = 4096;
/// Largest trailer section, all lines together.
pub const MAX_TRAILERS: usize = 16 * 1024;
/// 16 hex digits are exactly 64 bits: more digits could only overflow (or be
/// padding zeros, which nobody sends).
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Reading the hex digits of a chunk size.
    #[default]
    SizeStart,
    Size,
    /// Whitespace after the size; only `;` may follow (BWS before an extension).
    SizeWs,
    /// Inside chunk extensions, up to the CR.
    Ext,
    /// CR of the size line seen, LF expected.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// Streaming chunked-coding state machine (RFC 9112 §7.1): chunk sizes in hex
/// with overflow checks, extensions skipped, CRLF strictly required, trailers
/// accepted and bounded.
///
/// Every framing byte is consumed as soon as it is seen (the state carries
/// partial sizes and lines), so any split of the input gives the same result
/// as feeding it whole.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being read, then the data bytes still to come.
    size: u64,
    digits: u8,
    ext_len: usize,
    trailer_len: usize,
}

/// RFC 9110 token character (field names, chunk extension names).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Field-value and extension bytes: VCHAR, SP, HTAB, obs-text.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

const fn err(reason: &'static str) -> ChunkError {
    ChunkError { reason }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder::default()
    }

    /// The last chunk and trailers have been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes left in the current chunk (0 between chunks): how much can
    /// be read and passed on without looking at it.
    pub fn remaining_hint(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    /// Consumes a prefix of `input`. Call again with the rest while
    /// `consumed > 0` and not `done`; `consumed == 0` means more input is needed.
    ///
    /// A step consumes framing bytes and then at most one run of data; it
    /// stops right after that data, or when the body is done (bytes after the
    /// end belong to the next message and are left alone). After `done`,
    /// further calls consume nothing.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data => {
                    let avail = (input.len() - i) as u64;
                    let take = avail.min(self.size) as usize;
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Step {
                        consumed: i + take,
                        data: Some(i..i + take),
                        done: false,
                    });
                }
                State::SizeStart | State::Size => {
                    if let Some(v) = (b as char).to_digit(16) {
                        if self.digits == MAX_SIZE_DIGITS {
                            return Err(err("chunk size too large"));
                        }
                        self.digits += 1;
                        self.size = (self.size << 4) | u64::from(v);
                        self.state = State::Size;
                    } else if self.state == State::SizeStart {
                        return Err(err("missing chunk size"));
                    } else {
                        match b {
                            b'\r' => self.state = State::SizeLf,
                            b';' => self.state = State::Ext,
                            b' ' | b'\t' => self.state = State::SizeWs,
                            _ => return Err(err("invalid chunk size")),
                        }
                    }
                }
                State::SizeWs => match b {
                    b' ' | b'\t' => {}
                    b';' => self.state = State::Ext,
                    _ => return Err(err("invalid chunk size line")),
                },
                State::Ext => {
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if !is_text(b) {
                        return Err(err("invalid byte in chunk extension"));
                    } else {
                        self.ext_len += 1;
                        if self.ext_len > MAX_EXTENSION {
                            return Err(err("chunk extension too long"));
                        }
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(err("chunk size line not ended by CRLF"));
                    }
                    self.ext_len = 0;
                    self.digits = 0;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(err("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(err("chunk data not followed by CRLF"));
                    }
                    self.state = State::SizeStart;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::FinalLf;
                    } else if is_tchar(b) {
                        self.count_trailer()?;
                        self.state = State::TrailerName;
                    } else {
                        // Covers obs-fold (SP/HTAB first) and a bare LF.
                        return Err(err("invalid trailer field"));
                    }
                }
                State::TrailerName => {
                    self.count_trailer()?;
                    if b == b':' {
                        self.state = State::TrailerValue;
                    } else if !is_tchar(b) {
                        return Err(err("invalid trailer field name"));
                    }
                }
                State::TrailerValue => {
                    self.count_trailer()?;
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if !is_text(b) {
                        return Err(err("invalid trailer field value"));
                    }
                }
                State::TrailerLf => {
                    self.count_trailer()?;
                    if b != b'\n' {
                        return Err(err("trailer field not ended by CRLF"));
                    }
                    self.state = State::TrailerStart;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(err("chunked body not ended by CRLF"));
                    }
                    self.state = State::Done;
                    return Ok(Step {
                        consumed: i + 1,
                        data: None,
                        done: true,
                    });
                }
                State::Done => break,
            }
            i += 1;
        }
        Ok(Step {
            consumed: i,
            data: None,
            done: self.state == State::Done,
        })
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(err("trailer section too large"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` in order, returns (data, bytes consumed in total, done).
    fn run(parts: &[&[u8]]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut total = 0;
        for part in parts {
            let mut rest: &[u8] = part;
            loop {
                let step = d.feed(rest)?;
                if let Some(r) = step.data.clone() {
                    assert!(r.end <= step.consumed, "data beyond consumed");
                    data.extend_from_slice(&rest[r]);
                }
                total += step.consumed;
                rest = &rest[step.consumed..];
                if step.done {
                    return Ok((data, total, true));
                }
                if step.consumed == 0 {
                    assert!(rest.is_empty(), "stalled with input left");
                    break;
                }
            }
        }
        Ok((data, total, d.is_done()))
    }

    fn whole(body: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        run(&[body])
    }

    const SAMPLE: &[u8] = b"4\r\nWiki\r\n6;name=\"v\"\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-T: a b\r\n\r\n";
    const SAMPLE_DATA: &[u8] = b"Wikipedia in \r\n\r\nchunks.";

    #[test]
    fn decodes_sample_whole() {
        assert_eq!(
            whole(SAMPLE),
            Ok((SAMPLE_DATA.to_vec(), SAMPLE.len(), true))
        );
    }

    #[test]
    fn every_two_piece_split_agrees_with_whole() {
        for cut in 0..=SAMPLE.len() {
            let r = run(&[&SAMPLE[..cut], &SAMPLE[cut..]]);
            assert_eq!(
                r,
                Ok((SAMPLE_DATA.to_vec(), SAMPLE.len(), true)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn byte_at_a_time_agrees_with_whole() {
        let parts: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(run(&parts), Ok((SAMPLE_DATA.to_vec(), SAMPLE.len(), true)));
    }

    #[test]
    fn every_split_of_an_invalid_body_fails_the_same() {
        let bad = b"4\r\nWiki\r\n6\r\npedia\nx\r\n0\r\n\r\n";
        let expected = whole(bad).unwrap_err();
        for cut in 0..=bad.len() {
            assert_eq!(
                run(&[&bad[..cut], &bad[cut..]]),
                Err(expected),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn stops_at_end_of_body_leaving_next_message() {
        let mut input = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        let body_len = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(whole(&input), Ok((b"abc".to_vec(), body_len, true)));
        let mut d = ChunkedDecoder::new();
        let mut rest = &input[..];
        loop {
            let s = d.feed(rest).unwrap();
            rest = &rest[s.consumed..];
            if s.done {
                break;
            }
        }
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        assert_eq!(
            d.feed(rest).unwrap(),
            Step {
                consumed: 0,
                data: None,
                done: true
            }
        );
    }

    #[test]
    fn empty_body_and_no_trailers() {
        assert_eq!(whole(b"0\r\n\r\n"), Ok((vec![], 5, true)));
        assert_eq!(whole(b"000\r\n\r\n"), Ok((vec![], 7, true)));
    }

    #[test]
    fn incomplete_input_is_consumed_and_not_done() {
        assert_eq!(whole(b"5\r\nab"), Ok((b"ab".to_vec(), 5, false)));
        assert_eq!(whole(b"0\r\nX: y\r\n"), Ok((vec![], 9, false)));
        let mut d = ChunkedDecoder::new();
        assert_eq!(
            d.feed(b"").unwrap(),
            Step {
                consumed: 0,
                data: None,
                done: false
            }
        );
    }

    #[test]
    fn size_rules() {
        assert_eq!(whole(b"fF\r\n").map(|r| r.2), Ok(false));
        assert!(whole(b"\r\n").is_err(), "empty size");
        assert!(whole(b";x\r\n").is_err(), "empty size with extension");
        assert!(whole(b"g\r\n").is_err(), "non-hex");
        assert!(whole(b"-1\r\n").is_err());
        assert!(whole(b"0x5\r\n").is_err());
        assert!(whole(b" 5\r\n").is_err(), "leading space");
        assert!(
            whole(b"5 \r\n").is_err(),
            "trailing space without extension"
        );
        assert_eq!(
            whole(b"1 ;a=b\r\nx\r\n0\r\n\r\n").map(|r| r.0),
            Ok(b"x".to_vec())
        );
    }

    #[test]
    fn size_overflow_is_refused() {
        let mut d = ChunkedDecoder::new();
        d.feed(b"ffffffffffffffff\r\n").unwrap();
        assert_eq!(d.remaining_hint(), u64::MAX);
        assert_eq!(
            whole(b"10000000000000000\r\n"),
            Err(err("chunk size too large")),
            "17 digits"
        );
        assert!(
            whole(b"00000000000000001\r\n").is_err(),
            "17 digits, padded"
        );
    }

    #[test]
    fn strict_crlf() {
        assert!(whole(b"3\nabc\r\n0\r\n\r\n").is_err(), "bare LF after size");
        assert!(whole(b"3\r\nabc\n0\r\n\r\n").is_err(), "bare LF after data");
        assert!(
            whole(b"3\r\nabcd\r\n0\r\n\r\n").is_err(),
            "data longer than size"
        );
        assert!(whole(b"3\r\nabc\r\n0\r\n\n").is_err(), "bare LF at end");
        assert!(
            whole(b"3\r\nabc\r\n0\r\nX: y\n\r\n").is_err(),
            "bare LF in trailer"
        );
        assert!(
            whole(b"3\r\nabc\r\n0\r\n\rx").is_err(),
            "CR without LF at end"
        );
        assert!(
            whole(b"1;a\nb\r\nx\r\n0\r\n\r\n").is_err(),
            "bare LF in extension"
        );
    }

    #[test]
    fn extension_is_bounded() {
        let mut ok = b"1;".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_EXTENSION - 1));
        ok.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert!(whole(&ok).is_ok());
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_EXTENSION + 1));
        assert_eq!(whole(&long), Err(err("chunk extension too long")));
        assert!(
            whole(b"1;a\x00\r\nx\r\n0\r\n\r\n").is_err(),
            "NUL in extension"
        );
    }

    #[test]
    fn trailers_are_validated_and_bounded() {
        assert!(whole(b"0\r\nX: y\r\n\r\n").is_ok());
        assert!(whole(b"0\r\nX:\r\n\r\n").is_ok());
        assert!(whole(b"0\r\n X: y\r\n\r\n").is_err(), "obs-fold");
        assert!(whole(b"0\r\nX y: z\r\n\r\n").is_err(), "space in name");
        assert!(whole(b"0\r\n: z\r\n\r\n").is_err(), "empty name");
        assert!(whole(b"0\r\nX: a\x01\r\n\r\n").is_err(), "control char");
        let mut big = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILERS / 10 + 1) {
            big.extend_from_slice(b"X: 123456\r\n");
        }
        big.extend_from_slice(b"\r\n");
        assert_eq!(whole(&big), Err(err("trailer section too large")));
    }

    #[test]
    fn one_data_run_per_step() {
        let mut d = ChunkedDecoder::new();
        let input = b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
        let s = d.feed(input).unwrap();
        assert_eq!(
            s,
            Step {
                consumed: 5,
                data: Some(3..5),
                done: false
            }
        );
        let s = d.feed(&input[5..]).unwrap();
        assert_eq!(
            s,
            Step {
                consumed: 7,
                data: Some(5..7),
                done: false
            }
        );
        let s = d.feed(&input[12..]).unwrap();
        assert_eq!(
            s,
            Step {
                consumed: 7,
                data: None,
                done: true
            }
        );
    }

    #[test]
    fn remaining_hint_counts_down() {
        let mut d = ChunkedDecoder::new();
        d.feed(b"a\r\n").unwrap();
        assert_eq!(d.remaining_hint(), 10);
        d.feed(b"abcd").unwrap();
        assert_eq!(d.remaining_hint(), 6);
        d.feed(b"efghij").unwrap();
        assert_eq!(d.remaining_hint(), 0);
    }
}
