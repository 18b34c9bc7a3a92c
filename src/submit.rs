//! Knowing that an encoder's work will never run.
//!
//! wgpu keeps the callbacks registered on a command encoder
//! (`map_buffer_on_submit`, `on_submitted_work_done`) with the encoder, and
//! runs them once its submission completes. An encoder (or the command
//! buffer it finished into) dropped without being submitted drops them
//! uncalled. [`Unsubmitted`] turns that drop into an action: a callback
//! holds one, disarms it when wgpu calls it, and the action runs when wgpu
//! drops the callback instead. That is how a frame whose encoder a renderer
//! drops (a lost surface, a skipped frame) is found and recovered from
//! without an extra call.

/// Runs its action when dropped, unless [`disarm`](Self::disarm)ed first.
pub(crate) struct Unsubmitted<F: FnOnce()> {
    action: Option<F>,
}

impl<F: FnOnce()> Unsubmitted<F> {
    /// A guard that runs `action` if it is dropped armed.
    pub(crate) fn new(action: F) -> Self {
        Unsubmitted {
            action: Some(action),
        }
    }

    /// The work was submitted and its callback ran: nothing to do.
    pub(crate) fn disarm(mut self) {
        self.action = None;
    }
}

impl<F: FnOnce()> Drop for Unsubmitted<F> {
    fn drop(&mut self) {
        if let Some(action) = self.action.take() {
            action();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn runs_its_action_only_when_dropped_armed() {
        let ran = Cell::new(0);
        drop(Unsubmitted::new(|| ran.set(ran.get() + 1)));
        assert_eq!(ran.get(), 1);
        Unsubmitted::new(|| ran.set(ran.get() + 1)).disarm();
        assert_eq!(ran.get(), 1);
    }
}
