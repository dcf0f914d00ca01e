//! The client side of a connection: plain TCP or TLS over TCP, behind one
//! byte-stream interface so the proxy state machine is written once.
//!
//! TLS is driven entirely from the worker's event loop: `read` feeds socket
//! bytes to rustls and returns plaintext, `write` hands plaintext to rustls
//! and pushes records out. The handshake happens inside these calls, so a
//! connection in handshake is simply one whose reads return `WouldBlock`.
//! Backpressure: rustls buffers without limit, so `write` refuses more
//! plaintext while earlier records are still waiting for the socket.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    pub sock: TcpStream,
    pub conn: ServerConnection,
    /// The socket reported EOF to rustls.
    eof: bool,
}

/// Largest plaintext slice handed to rustls in one `write`: one TLS record.
const TLS_WRITE_CHUNK: usize = 16 * 1024;

impl Transport {
    pub fn tls(sock: TcpStream, conn: ServerConnection) -> Transport {
        Transport::Tls(Box::new(TlsStream {
            sock,
            conn,
            eof: false,
        }))
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.sock,
        }
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
        }
    }

    pub fn tls_conn(&self) -> Option<&ServerConnection> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => Some(&t.conn),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.is_handshaking(),
        }
    }

    /// Reads plaintext. `Ok(0)` is end of stream; `WouldBlock` means wait for
    /// the socket to become readable.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes plaintext; may accept less than `buf`. `WouldBlock` means wait
    /// for the socket to become writable.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    /// Pushes pending TLS records. `Ok(true)` when nothing is left pending.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            Transport::Tls(t) => t.flush(),
        }
    }

    /// Whether bytes are waiting to reach the socket (TLS records).
    pub fn has_pending_output(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Best-effort orderly close: a TLS close_notify, then FIN.
    pub fn close(&mut self) {
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
        let _ = self.socket().shutdown(std::net::Shutdown::Write);
    }
}

impl TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    self.eof = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(err) = self.conn.process_new_packets() {
                // Tell the peer why before failing (the alert is queued by rustls).
                let _ = self.flush();
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
            // Handshake messages (and key updates) produced by the packets.
            if self.conn.wants_write() {
                match self.flush() {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self
            .conn
            .writer()
            .write(&buf[..buf.len().min(TLS_WRITE_CHUNK)])?;
        match self.flush() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
