//! The bounded queue of control frames a session has produced and the driver has not yet taken.

use std::collections::VecDeque;

/// Largest control frame we build. Our own packets are far smaller; replies that quote a peer's
/// packet (Code-Reject, Protocol-Reject, Echo-Reply) are cut to fit.
pub(crate) const MAX_CONTROL_FRAME: usize = 1504;

/// At most this many frames wait for the driver; more are dropped and counted. A session emits
/// a handful per input, so reaching the bound means the driver stopped draining.
const MAX_QUEUED: usize = 64;

/// Buffers kept for reuse once their frame went out: enough for the steady state (one
/// Echo-Request or Echo-Reply at a time), so that it does not allocate.
const MAX_FREE: usize = 2;

/// A reused buffer larger than this goes back to the allocator instead (a Protocol-Reject
/// quoting a long frame must not pin its size in every idle session).
const MAX_FREE_CAPACITY: usize = 128;

/// Queued frames plus a small free list. Frames are stored at their own length, not at
/// [`MAX_CONTROL_FRAME`]: an idle session holds a few dozen bytes here, not kilobytes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    frames: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    pub(crate) dropped: u64,
}

impl Outbox {
    /// Builds one frame with `write`, which returns the frame's length. A frame that does not
    /// fit in [`MAX_CONTROL_FRAME`] bytes is dropped and counted.
    pub(crate) fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Result<usize, codec::NoSpace>) {
        if self.frames.len() >= MAX_QUEUED {
            self.dropped += 1;
            return;
        }
        let mut scratch = [0u8; MAX_CONTROL_FRAME];
        match write(&mut scratch) {
            Ok(len) => {
                let frame = scratch.get(..len).unwrap_or_default();
                let mut buf = self.free.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(frame);
                self.frames.push_back(buf);
            }
            Err(codec::NoSpace) => self.dropped += 1,
        }
    }

    /// Copies the oldest frame into `out` and returns its length; `None` when empty. A frame
    /// larger than `out` is dropped and counted.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<usize> {
        loop {
            let frame = self.frames.pop_front()?;
            let len = frame.len();
            let fits = out
                .get_mut(..len)
                .map(|dst| dst.copy_from_slice(&frame))
                .is_some();
            if self.free.len() < MAX_FREE && frame.capacity() <= MAX_FREE_CAPACITY {
                self.free.push(frame);
            }
            if self.frames.is_empty() {
                // A negotiation burst must not pin its peak queue in an idle session.
                self.frames.shrink_to(MAX_FREE);
            }
            if fits {
                return Some(len);
            }
            self.dropped += 1;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fifo_reuses_buffers() {
        let mut out = Outbox::default();
        for i in 0..MAX_QUEUED + 3 {
            out.push(|b| {
                b[0] = u8::try_from(i % 256).unwrap();
                Ok(1)
            });
        }
        assert_eq!(out.len(), MAX_QUEUED);
        assert_eq!(out.dropped, 3);
        let mut buf = [0u8; 4];
        assert_eq!(out.pop_into(&mut buf), Some(1));
        assert_eq!(buf[0], 0);
        out.push(|_| Err(codec::NoSpace));
        assert_eq!(out.dropped, 4);
        let mut tiny = [0u8; 0];
        assert_eq!(
            out.pop_into(&mut tiny),
            None,
            "frames larger than the buffer are dropped"
        );
        assert_eq!(out.len(), 0);
    }
}
