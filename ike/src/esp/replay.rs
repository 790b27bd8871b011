//! The receiver's anti-replay window (RFC 4303 §3.4.3 and Appendix A2.1, without ESN).
//!
//! ```text
//!            too old            inside the window            new
//!   ... ─────────────────┤ top-WINDOW+1 ............ top ├───────────── ...
//!                          one bit per number: seen / not seen
//! ```
//!
//! The bitmap is a ring of 64-bit words indexed by sequence number (the layout of RFC 6479):
//! moving the window clears only the words it passes, so a jump costs at most one pass over
//! the ring however far it goes. The ring is twice the window, so the word holding `top` never
//! shares bits with the oldest numbers still inside the window.

/// Packets the window remembers behind the highest accepted sequence number.
pub const WINDOW: u32 = 1024;

const RING_BITS: u32 = 2 * WINDOW;
const WORDS: usize = (RING_BITS / 64) as usize;

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The number was already accepted.
    #[error("duplicate sequence number")]
    Duplicate,
    /// The number is left of the window (or zero, which a sender never uses).
    #[error("sequence number older than the replay window")]
    TooOld,
}

/// Anti-replay state for one inbound SA: the highest sequence number accepted and a bitmap of
/// the [`WINDOW`] numbers up to it.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Highest accepted sequence number; 0 before the first packet.
    top: u32,
    /// Bit `n % RING_BITS` is set when `n` was accepted (for `n` inside the window).
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every sequence number from 1 on is acceptable.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            top: 0,
            bits: [0; WORDS],
        }
    }

    /// The highest sequence number accepted so far (0 if none).
    #[must_use]
    pub const fn top(&self) -> u32 {
        self.top
    }

    fn slot(seq: u32) -> (usize, u64) {
        let bit = seq % RING_BITS;
        // `bit / 64 < WORDS` because `bit < RING_BITS`.
        let word = usize::try_from(bit / 64).unwrap_or(0) % WORDS;
        (word, 1u64 << (bit % 64))
    }

    /// Whether `seq` would be accepted, without changing anything.
    ///
    /// # Errors
    /// [`ReplayError`] if it would not.
    #[inline]
    pub fn check(&self, seq: u32) -> Result<(), ReplayError> {
        // RFC 4303 §3.3.3: the first packet carries 1, so 0 is never valid.
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(());
        }
        // RFC 4303 §3.4.3: numbers left of the window are rejected.
        if self.top - seq >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        let (word, mask) = Self::slot(seq);
        // RFC 4303 §3.4.3: a number inside the window already seen is a duplicate.
        if self.bits.get(word).is_some_and(|w| w & mask != 0) {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }

    /// Records `seq` as received, sliding the window if it is new. Call only after the packet's
    /// integrity check passed (RFC 4303 §3.4.3), and after [`ReplayWindow::check`] accepted it.
    #[inline]
    pub fn accept(&mut self, seq: u32) {
        if seq == 0 {
            return;
        }
        if seq > self.top {
            self.advance(seq);
        }
        let (word, mask) = Self::slot(seq);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= mask;
        }
    }

    /// Moves `top` to `new_top`, clearing the words of the numbers passed over.
    fn advance(&mut self, new_top: u32) {
        let old_word = self.top / 64;
        let new_word = new_top / 64;
        let words = u32::try_from(WORDS).unwrap_or(u32::MAX);
        if new_word - old_word >= words {
            self.bits = [0; WORDS];
        } else {
            // Every word after the old top's, up to and including the new top's, holds only
            // numbers from a previous lap of the ring: clear them. Bits above `top` in its own
            // word are already clear (the word was cleared when the window entered it).
            for w in (old_word + 1)..=new_word {
                let index = usize::try_from(w % words).unwrap_or(0);
                if let Some(slot) = self.bits.get_mut(index) {
                    *slot = 0;
                }
            }
        }
        self.top = new_top;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn accept(w: &mut ReplayWindow, seq: u32) -> Result<(), ReplayError> {
        w.check(seq)?;
        w.accept(seq);
        Ok(())
    }

    #[test]
    fn duplicates_are_refused() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 1), Ok(()));
        assert_eq!(accept(&mut w, 1), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 3), Ok(()));
        assert_eq!(accept(&mut w, 2), Ok(()));
        assert_eq!(accept(&mut w, 2), Err(ReplayError::Duplicate));
        assert_eq!(w.top(), 3);
    }

    #[test]
    fn zero_and_numbers_left_of_the_window_are_too_old() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        accept(&mut w, 5000).unwrap();
        assert_eq!(w.check(5000 - WINDOW), Err(ReplayError::TooOld));
        assert_eq!(w.check(5000 - WINDOW + 1), Ok(()));
        accept(&mut w, 5000 - WINDOW + 1).unwrap();
        assert_eq!(w.check(5000 - WINDOW + 1), Err(ReplayError::Duplicate));
    }

    #[test]
    fn check_does_not_change_the_window() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 10).unwrap();
        let before = w.clone();
        assert_eq!(w.check(11), Ok(()));
        assert_eq!(w.check(11), Ok(()));
        assert_eq!(w.top(), before.top());
        assert_eq!(w.bits, before.bits);
    }

    #[test]
    fn a_jump_wider_than_the_window_forgets_everything_behind_it() {
        let mut w = ReplayWindow::new();
        for seq in 1..=100 {
            accept(&mut w, seq).unwrap();
        }
        let far = 100 + 3 * WINDOW + 17;
        accept(&mut w, far).unwrap();
        assert_eq!(w.check(50), Err(ReplayError::TooOld));
        // Everything inside the new window except `far` is fresh, including numbers whose ring
        // slots held old bits.
        for seq in (far - WINDOW + 1)..far {
            assert_eq!(w.check(seq), Ok(()), "{seq}");
        }
        assert_eq!(w.check(far), Err(ReplayError::Duplicate));
    }

    #[test]
    fn the_window_slides_by_exactly_its_width_and_by_one_more() {
        for jump in [WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW, 2 * WINDOW + 64] {
            let mut w = ReplayWindow::new();
            accept(&mut w, 1).unwrap();
            accept(&mut w, 2).unwrap();
            accept(&mut w, 2 + jump).unwrap();
            let expect_old = jump >= WINDOW;
            assert_eq!(
                w.check(2),
                Err(if expect_old {
                    ReplayError::TooOld
                } else {
                    ReplayError::Duplicate
                }),
                "{jump}"
            );
        }
    }

    #[test]
    fn the_top_of_the_sequence_space_works() {
        let mut w = ReplayWindow::new();
        accept(&mut w, u32::MAX - 1).unwrap();
        accept(&mut w, u32::MAX).unwrap();
        assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u32::MAX - 2), Ok(()));
    }

    /// The naive model: a set of accepted numbers and the highest one.
    fn model_check(seen: &BTreeSet<u32>, top: u32, seq: u32) -> Result<(), ReplayError> {
        if seq == 0 || (seq <= top && top - seq >= WINDOW) {
            Err(ReplayError::TooOld)
        } else if seen.contains(&seq) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_set_model(
            start in 0u32..u32::MAX - 100_000,
            steps in proptest::collection::vec((0u8..4, 0u32..3000), 1..400),
        ) {
            let mut w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut top = 0u32;
            let mut cursor = start;
            for (kind, delta) in steps {
                // Mostly near the top, sometimes behind it, sometimes a big jump forward.
                let seq = match kind {
                    0 => cursor.saturating_add(delta % 8),
                    1 => cursor.saturating_sub(delta),
                    2 => cursor.saturating_add(delta),
                    _ => cursor.saturating_sub(delta % 70),
                };
                cursor = cursor.max(seq);
                let got = w.check(seq);
                prop_assert_eq!(got, model_check(&seen, top, seq), "seq {}", seq);
                if got.is_ok() {
                    w.accept(seq);
                    seen.insert(seq);
                    top = top.max(seq);
                }
                prop_assert_eq!(w.top(), top);
            }
        }
    }
}
