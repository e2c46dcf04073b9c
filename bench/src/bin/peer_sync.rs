//! Peers of the `cross` group that are thread libraries, not task runtimes: parking_lot's `Mutex`
//! (`peer=parking_lot`) and crossbeam-channel (`peer=crossbeam`). See `bench::names` for the rows.
//!
//! Run: `cargo run -p bench --release --bin peer_sync -- [--group cross] [--quick] [--duration S]`
//!
//! - `cross/oneshot_xthread` (crossbeam): two threads hand a value back and forth through fresh
//!   `bounded(1)` channels, each blocking; ns per hand-off.
//! - `cross/chan_xthread` (crossbeam): one thread sends into `bounded(64)`, another receives; ns per message.
//! - `cross/mutex_uncontended` (parking_lot): lock + unlock; ns. (`mutex_contended` needs a lock held across
//!   a yield of a task, which a thread lock cannot do: not measured.)

use bench::{bb, names, report, time_per_op, time_per_op_setup, Opts};

fn main() {
    let o = Opts::from_args();
    if !o.wants("cross") {
        return;
    }
    let ops = o.counts.ops.min(20_000);
    type Pair = (
        crossbeam_channel::Sender<u64>,
        crossbeam_channel::Receiver<u64>,
    );
    let setup = || {
        let mut mine: Vec<Pair> = Vec::with_capacity(ops);
        let mut theirs = Vec::with_capacity(ops);
        for _ in 0..ops {
            let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
            let (resp_tx, resp_rx) = crossbeam_channel::bounded::<u64>(1);
            mine.push((req_tx, resp_rx));
            theirs.push((req_rx, resp_tx));
        }
        let t = std::thread::spawn(move || {
            for (req, resp) in theirs {
                let v = req.recv().expect("request");
                let _ = resp.send(v + 1);
            }
        });
        (mine, t)
    };
    let ns = time_per_op_setup(o.duration, 2 * ops, setup, |(mine, t)| {
        let mut v = 0u64;
        for (req, resp) in mine {
            let _ = req.send(bb(v));
            v = resp.recv().expect("response");
        }
        bb(v);
        t.join().expect("the helper thread");
    });
    report(
        "cross",
        names::ONESHOT_XTHREAD,
        "crossbeam",
        "ns_per_op",
        ns,
        2 * ops,
    );

    let ops = o.counts.ops;
    let setup = || {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(64);
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
        let t = std::thread::spawn(move || {
            let _ = go_rx.recv();
            for i in 0..ops as u64 {
                tx.send(i).expect("send");
            }
        });
        (rx, go_tx, t)
    };
    let ns = time_per_op_setup(o.duration, ops, setup, |(rx, go, t)| {
        let _ = go.send(());
        let mut sum = 0u64;
        for _ in 0..ops {
            sum += rx.recv().expect("recv");
        }
        bb(sum);
        t.join().expect("the producer thread");
    });
    report(
        "cross",
        names::CHAN_XTHREAD,
        "crossbeam",
        "ns_per_op",
        ns,
        ops,
    );

    let m = parking_lot::Mutex::new(0u64);
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            *bb(&m).lock() += 1;
        }
    });
    report(
        "cross",
        names::MUTEX_UNCONTENDED,
        "parking_lot",
        "ns_per_op",
        ns,
        ops,
    );
}
