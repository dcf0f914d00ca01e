//! Fuzzes the chunked decoder: never panics, and feeding the input in
//! arbitrary pieces gives exactly what feeding it whole gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii::http::body::{ChunkError, ChunkedDecoder};

/// Feeds `pieces` in order: (decoded data, bytes consumed, done) or the error.
fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Result<(Vec<u8>, usize, bool), ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut total = 0;
    for piece in pieces {
        let mut rest = piece;
        loop {
            let step = d.feed(rest)?;
            assert!(step.consumed <= rest.len());
            if let Some(r) = step.data {
                assert!(r.end <= step.consumed);
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
    Ok((data, total, false))
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the split points; the rest is the body.
    if data.len() < 2 {
        return;
    }
    let (cuts, body) = data.split_at(4.min(data.len() / 2));
    let whole = run(std::iter::once(body));
    let mut pieces = Vec::new();
    let mut rest = body;
    for &c in cuts.iter().cycle().take(64) {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(c) % 7 + 1).min(rest.len());
        pieces.push(&rest[..n]);
        rest = &rest[n..];
    }
    pieces.push(rest);
    assert_eq!(run(pieces.into_iter()), whole);
});
