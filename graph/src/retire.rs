//! Retire lists: work that must wait until a frame's fence has signalled
//! (freeing memory the GPU may still read, recycling staging space).
//!
//! One list per frame-in-flight slot. Callbacks are stored in a bump arena per
//! slot, reset when the slot's frame retires, so registering retire work
//! allocates nothing once the arenas are warm. Lists run in frame order, each
//! callback exactly once.

use std::ptr::NonNull;

use bumpalo::Bump;

trait RetireFn: Send {
    fn call(&mut self);
}

struct RetireCell<F>(Option<F>);

impl<F: FnOnce() + Send> RetireFn for RetireCell<F> {
    fn call(&mut self) {
        if let Some(f) = self.0.take() {
            f()
        }
    }
}

/// The retire work of one frame slot.
#[derive(Default)]
pub(crate) struct RetireList {
    arena: Bump,
    items: Vec<NonNull<dyn RetireFn>>,
}

// SAFETY: every stored callback is `Send + 'static`, and the list is only used
// through `&mut self` (by the scheduler's owner thread).
unsafe impl Send for RetireList {}

impl RetireList {
    pub(crate) fn push<F: FnOnce() + Send + 'static>(&mut self, f: F) {
        let cell: &mut dyn RetireFn = self.arena.alloc(RetireCell(Some(f)));
        self.items.push(NonNull::from(cell));
    }

    /// Runs every callback in registration order, then frees the arena.
    /// Returns how many ran. A panicking callback is caught and counted as run;
    /// the rest still run.
    pub(crate) fn run_all(&mut self) -> usize {
        let n = self.items.len();
        for ptr in self.items.drain(..) {
            let raw = ptr.as_ptr();
            // SAFETY: the pointer came from `push` on this arena, which has not
            // been reset since; it is called and dropped exactly once, here.
            let _ =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*raw).call() }));
            unsafe { std::ptr::drop_in_place(raw) };
        }
        self.arena.reset();
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

impl Drop for RetireList {
    fn drop(&mut self) {
        // Callbacks whose fence never came are dropped, not run: running them
        // could free memory the GPU still reads.
        for ptr in self.items.drain(..) {
            // SAFETY: live, from this arena, dropped exactly once.
            unsafe { std::ptr::drop_in_place(ptr.as_ptr()) };
        }
    }
}
