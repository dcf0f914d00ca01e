//! Byte queues and the per-worker pool of their storage.
//!
//! A [`Buf`] appends at the end and consumes from the front. Its storage is
//! a vector that stays initialised once zeroed, so reading into it costs no
//! memset per read; and it comes from a worker's [`BufPool`], to which an
//! idle connection gives it back: a keep-alive connection waiting for its
//! next request holds no buffer memory, and a busy worker reuses the same
//! few blocks without allocating.

/// Largest single read, and the size of a pooled block. 16 KiB matches a TLS
/// record, so a read is one record's worth of plaintext.
pub const IO_SIZE: usize = 16 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
}

/// Free storage blocks of one worker.
#[derive(Debug, Default)]
pub struct BufPool {
    free: Vec<Vec<u8>>,
}

/// Blocks kept for reuse; beyond this, released storage goes back to the
/// allocator so memory shrinks after a burst.
const POOL_MAX: usize = 256;

impl BufPool {
    fn get(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; IO_SIZE])
    }

    fn put(&mut self, v: Vec<u8>) {
        // Only blocks that reads initialised are kept: a queue that was only
        // appended to (a head, an output queue) holds a short vector that
        // would have to be zeroed to serve reads, which costs more than the
        // allocator; and a buffer that grew for a large head would pin its
        // memory in the pool.
        if (IO_SIZE..=2 * IO_SIZE).contains(&v.len()) && self.free.len() < POOL_MAX {
            self.free.push(v);
        }
    }
}

#[derive(Debug, Default)]
pub struct Buf {
    /// Initialised storage; `start..end` holds the queued bytes.
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    pub fn new() -> Buf {
        Buf::default()
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Moves the queued bytes to the front when that makes room.
    fn compact(&mut self) {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        if self.data.len() - self.end < bytes.len() {
            self.compact();
        }
        let fit = bytes.len().min(self.data.len() - self.end);
        self.data[self.end..self.end + fit].copy_from_slice(&bytes[..fit]);
        self.end += fit;
        if fit < bytes.len() {
            self.data.truncate(self.end);
            self.data.extend_from_slice(&bytes[fit..]);
            self.end = self.data.len();
        }
    }

    /// Lets `f` append to the queue through a `Vec` (head writers). The
    /// bytes go through a per-thread scratch vector and are then copied in:
    /// handing out `data` itself would shorten its initialised part, which
    /// the next read would have to zero again.
    pub fn write_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            let r = f(&mut scratch);
            self.extend(&scratch);
            r
        })
    }

    /// Room before the buffer counts as full at `limit` bytes.
    pub fn room(&self, limit: usize) -> usize {
        limit.saturating_sub(self.len())
    }

    /// Space to read into: at most [`IO_SIZE`] bytes, keeping the queue
    /// under `limit`. Call [`Buf::commit`] with what was read.
    pub fn spare(&mut self, limit: usize, pool: &mut BufPool) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = pool.get();
        }
        let want = self.room(limit).min(IO_SIZE);
        if self.data.len() - self.end < want {
            self.compact();
        }
        if self.data.len() - self.end < want {
            let new_len = self.end + want;
            self.data.resize(new_len, 0);
        }
        let end = self.end;
        &mut self.data[end..end + want]
    }

    /// Keeps `n` bytes of what [`Buf::spare`] handed out.
    pub fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// Gives the storage back to the pool if nothing is queued.
    pub fn release(&mut self, pool: &mut BufPool) {
        if self.is_empty() && !self.data.is_empty() {
            pool.put(std::mem::take(&mut self.data));
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_commit_consume_roundtrip() {
        let mut pool = BufPool::default();
        let mut b = Buf::new();
        let s = b.spare(8, &mut pool);
        assert_eq!(s.len(), 8);
        s[..3].copy_from_slice(b"abc");
        b.commit(3);
        assert_eq!(b.bytes(), b"abc");
        assert_eq!(b.room(8), 5);
        b.consume(1);
        assert_eq!(b.bytes(), b"bc");
        let s = b.spare(8, &mut pool);
        assert_eq!(s.len(), 6);
        s[0] = b'd';
        b.commit(1);
        assert_eq!(b.bytes(), b"bcd");
        b.consume(3);
        assert!(b.is_empty());
        b.release(&mut pool);
        assert_eq!(pool.free.len(), 1);
    }

    #[test]
    fn extend_and_write_with_keep_order_across_growth() {
        let mut b = Buf::new();
        b.extend(b"head ");
        b.write_with(|v| v.extend_from_slice(b"middle "));
        let big = vec![b'x'; 3 * IO_SIZE];
        b.extend(&big);
        assert_eq!(b.len(), 12 + 3 * IO_SIZE);
        assert!(b.bytes().starts_with(b"head middle xxx"));
        b.consume(5);
        b.extend(b"!");
        assert!(b.bytes().starts_with(b"middle "));
        assert!(b.bytes().ends_with(b"x!"));
    }

    #[test]
    fn reads_are_capped_at_io_size_and_limit() {
        let mut pool = BufPool::default();
        let mut b = Buf::new();
        assert_eq!(b.spare(4 * IO_SIZE, &mut pool).len(), IO_SIZE);
        b.commit(IO_SIZE);
        assert_eq!(b.spare(4 * IO_SIZE, &mut pool).len(), IO_SIZE);
        b.commit(10);
        assert_eq!(b.spare(IO_SIZE + 20, &mut pool).len(), 10);
    }
}
