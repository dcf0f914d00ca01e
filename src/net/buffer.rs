//! A bounded byte queue: bytes are appended at the end and consumed from the
//! front; the consumed prefix is reclaimed lazily by shifting, which costs
//! little because buffers are small and usually drained completely.

/// Size of the I/O buffers of a connection direction. 16 KiB matches a TLS
/// record, so a full buffer is one record's worth of plaintext.
pub const IO_SIZE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    pub fn new() -> Buf {
        Buf {
            data: Vec::new(),
            start: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.data.len()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }

    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.start = 0;
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// The vector to append to directly (for head writers).
    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Room before the buffer counts as full at `limit` bytes.
    pub fn room(&self, limit: usize) -> usize {
        limit.saturating_sub(self.len())
    }

    /// Spare space of at least `want` bytes (but keeping the total length
    /// under `limit`) to read into; call [`Buf::commit`] with what was read.
    pub fn spare(&mut self, limit: usize) -> &mut [u8] {
        if self.start > 0
            && (self.start >= self.data.len() / 2
                || self.data.len() + IO_SIZE > self.data.capacity())
        {
            self.data.drain(..self.start);
            self.start = 0;
        }
        let room = limit.saturating_sub(self.len());
        let old = self.data.len();
        self.data.resize(old + room, 0);
        &mut self.data[old..]
    }

    /// Keeps `n` bytes of what [`Buf::spare`] handed out and drops the rest.
    pub fn commit(&mut self, spare_len: usize, n: usize) {
        let keep = self.data.len() - spare_len + n;
        self.data.truncate(keep);
    }

    /// Releases memory of an idle connection's buffer.
    pub fn shrink(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_commit_consume_roundtrip() {
        let mut b = Buf::new();
        let s = b.spare(8);
        s[..3].copy_from_slice(b"abc");
        let len = s.len();
        b.commit(len, 3);
        assert_eq!(b.bytes(), b"abc");
        assert_eq!(b.room(8), 5);
        b.consume(1);
        assert_eq!(b.bytes(), b"bc");
        let s = b.spare(8);
        assert_eq!(s.len(), 6);
        s[0] = b'd';
        let len = s.len();
        b.commit(len, 1);
        assert_eq!(b.bytes(), b"bcd");
        b.consume(3);
        assert!(b.is_empty());
    }
}
