//! A streamed response body that produces its own bytes: the work that
//! makes a stream (the pump, a fake stream's wait) runs inside the body's
//! polls, on the client connection's own task, and hands each piece over
//! through a one-piece [`Outbox`].
//!
//! Compared with a task feeding a channel, nothing is spawned and nothing
//! crosses tasks: the first poll after the headers already yields what is
//! ready (the opening event, the events the upstream's first read brought),
//! so the headers and those bytes leave in one write instead of two; bytes
//! made together leave together (actix encodes every piece it is handed
//! before it flushes); and a client that cannot keep up stops the producer,
//! whose upstream then waits in the kernel's buffers. When the client
//! leaves, actix drops the body and with it the producer, wherever it was
//! waiting: producers clean up in `Drop`, not on a send error.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// Where a producer puts the next piece for the client.
#[derive(Clone, Default)]
pub struct Outbox {
    slot: Rc<Cell<Option<Bytes>>>,
}

impl Outbox {
    /// Hands `bytes` to the client's connection, first waiting until the
    /// previous piece was taken. It never fails: if the client leaves, the
    /// producer is dropped where it waits.
    pub fn send(&self, bytes: Bytes) -> impl Future<Output = ()> + '_ {
        let mut bytes = Some(bytes);
        std::future::poll_fn(move |_| {
            if self.is_full() {
                // Taken by the body's next poll, which then polls the
                // producer again: no waker is needed.
                return Poll::Pending;
            }
            self.slot.set(bytes.take());
            Poll::Ready(())
        })
    }

    /// Whether a piece waits to be taken.
    fn is_full(&self) -> bool {
        let piece = self.slot.take();
        let full = piece.is_some();
        self.slot.set(piece);
        full
    }
}

/// The response body that runs `produce` and yields what it sends; it ends
/// when `produce` has returned and its last piece was taken.
pub fn produced_body<Fut>(produce: impl FnOnce(Outbox) -> Fut) -> ProducedBody<Fut>
where
    Fut: Future<Output = ()>,
{
    let outbox = Outbox::default();
    ProducedBody { producer: Some(Box::pin(produce(outbox.clone()))), outbox }
}

/// See [`produced_body`].
pub struct ProducedBody<Fut> {
    producer: Option<Pin<Box<Fut>>>,
    outbox: Outbox,
}

impl<Fut: Future<Output = ()>> Stream for ProducedBody<Fut> {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.outbox.slot.take() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            let Some(producer) = this.producer.as_mut() else {
                return Poll::Ready(None);
            };
            match producer.as_mut().poll(cx) {
                Poll::Ready(()) => this.producer = None,
                // Pending on a full outbox: the piece goes out first (the
                // loop). Pending otherwise: its own waker wakes this task.
                Poll::Pending if this.outbox.is_full() => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    #[actix_rt::test]
    async fn pieces_come_out_in_order_and_the_body_ends_with_its_producer() {
        let body = produced_body(|outbox| async move {
            outbox.send(Bytes::from_static(b"one")).await;
            outbox.send(Bytes::from_static(b"two")).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            outbox.send(Bytes::from_static(b"three")).await;
        });
        let pieces: Vec<Bytes> = body.map(Result::unwrap).collect().await;
        assert_eq!(pieces, [&b"one"[..], b"two", b"three"]);
    }

    #[actix_rt::test]
    async fn ready_pieces_are_yielded_without_waiting_and_the_producer_waits_for_each_take() {
        let made = Rc::new(Cell::new(0));
        let counted = made.clone();
        let mut body = Box::pin(produced_body(move |outbox| async move {
            for piece in [&b"a"[..], b"b", b"c"] {
                outbox.send(Bytes::from_static(piece)).await;
                counted.set(counted.get() + 1);
            }
            std::future::pending::<()>().await;
        }));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // One piece at a time: the producer goes on only once it was taken.
        for (taken, expected) in [&b"a"[..], b"b", b"c"].into_iter().enumerate() {
            match body.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(Ok(bytes))) => assert_eq!(bytes, expected),
                other => panic!("piece {taken}: {:?}", other.map(|piece| piece.map(|piece| piece.is_ok()))),
            }
            assert_eq!(made.get(), taken + 1);
        }
        assert!(body.as_mut().poll_next(&mut cx).is_pending(), "the producer waits on something else now");
    }

    #[actix_rt::test]
    async fn dropping_the_body_drops_the_producer_where_it_waits() {
        struct Dropped(Rc<Cell<bool>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let flag = Dropped(dropped.clone());
        let mut body = Box::pin(produced_body(move |outbox| async move {
            let _flag = flag;
            outbox.send(Bytes::from_static(b"first")).await;
            std::future::pending::<()>().await;
        }));
        assert!(body.next().await.is_some());
        drop(body);
        assert!(dropped.get());
    }
}
