//! The stores a queue keeps its items in: the order in which they come out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// How a queue stores its items: the order in which they come out.
pub trait Store<T>: Default {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Puts back an item that was taken out and could not be delivered (it comes out next, where the
    /// order allows).
    fn push_back_taken(&mut self, item: T);
    /// Takes the next item.
    fn pop(&mut self) -> Option<T>;
    /// The next item.
    fn peek(&self) -> Option<&T>;
    /// How many items it holds.
    fn len(&self) -> usize;
    /// Whether it holds nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First in, first out ([`Queue`](super::Queue)).
impl<T> Store<T> for VecDeque<T> {
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

/// Last in, first out ([`LifoQueue`](super::LifoQueue)).
impl<T> Store<T> for Vec<T> {
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

/// Lowest first ([`PriorityQueue`](super::PriorityQueue), as Python's `heapq`).
impl<T: Ord> Store<T> for BinaryHeap<Reverse<T>> {
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
