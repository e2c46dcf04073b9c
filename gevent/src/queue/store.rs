//! The stores a queue keeps its items in; a store decides the order items come out in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// How a [`Queue`](super::Queue) stores its items, which decides the order they come out in:
/// `VecDeque<T>`, first in first out (the default: [`Queue<T>`](super::Queue)); `Vec<T>`, last in
/// first out ([`LifoQueue`](super::LifoQueue)); `BinaryHeap<Reverse<T>>`, lowest first
/// ([`PriorityQueue`](super::PriorityQueue)).
///
/// Sealed: the queue's hand-off rules are written for these three, so no other type implements it.
///
/// ```compile_fail
/// #[derive(Default)]
/// struct Mine;
/// impl gevent::queue::Store<u8> for Mine {} // error: `Mine` lacks the private supertrait
/// ```
pub trait Store<T>: sealed::Ops<T> {}

mod sealed {
    /// What the queue does with its store. Private, so [`Store`](super::Store) cannot be
    /// implemented outside this module.
    pub trait Ops<T>: Default {
        /// Adds an item.
        fn push(&mut self, item: T);
        /// Puts back an item that was taken out and could not be delivered (it comes out next,
        /// where the order allows).
        fn push_back_taken(&mut self, item: T);
        /// Takes the next item.
        fn pop(&mut self) -> Option<T>;
        /// The next item.
        fn peek(&self) -> Option<&T>;
        /// How many items it holds.
        fn len(&self) -> usize;
    }
}

impl<T> Store<T> for VecDeque<T> {}

/// First in, first out.
impl<T> sealed::Ops<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn push_back_taken(&mut self, item: T) {
        self.push_front(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.front()
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

impl<T> Store<T> for Vec<T> {}

/// Last in, first out.
impl<T> sealed::Ops<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn push_back_taken(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn peek(&self) -> Option<&T> {
        self.last()
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Ord> Store<T> for BinaryHeap<Reverse<T>> {}

/// Lowest first, as Python's `heapq`.
impl<T: Ord> sealed::Ops<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn push_back_taken(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|r| r.0)
    }
    fn peek(&self) -> Option<&T> {
        BinaryHeap::peek(self).map(|r| &r.0)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}
