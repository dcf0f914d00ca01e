//! Typed mio tokens: which socket of which worker object an event is for.
//!
//! Client and upstream sockets share the low range (slab key times two plus
//! the side); listeners and the waker live at the top of the range so they
//! can never collide with a slab key.

use mio::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Waker,
    Listener(usize),
    Client(usize),
    Upstream(usize),
}

const WAKER: usize = usize::MAX;
/// Listener tokens count down from just below the waker.
const LISTENER_TOP: usize = usize::MAX - 1;
const MAX_LISTENERS: usize = 1 << 16;

impl Tok {
    pub fn token(self) -> Token {
        Token(match self {
            Tok::Waker => WAKER,
            Tok::Listener(i) => LISTENER_TOP - i,
            Tok::Client(k) => k << 1,
            Tok::Upstream(k) => (k << 1) | 1,
        })
    }

    pub fn from_token(t: Token) -> Tok {
        let v = t.0;
        if v == WAKER {
            Tok::Waker
        } else if v > LISTENER_TOP - MAX_LISTENERS {
            Tok::Listener(LISTENER_TOP - v)
        } else if v & 1 == 0 {
            Tok::Client(v >> 1)
        } else {
            Tok::Upstream(v >> 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for t in [
            Tok::Waker,
            Tok::Listener(0),
            Tok::Listener(7),
            Tok::Client(0),
            Tok::Client(12345),
            Tok::Upstream(0),
            Tok::Upstream(99),
        ] {
            assert_eq!(Tok::from_token(t.token()), t);
        }
    }
}
