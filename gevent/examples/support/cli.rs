//! The command line the example servers `upper_server` and `prefork_server` share:
//! `[ADDR] [--workers N]`. Each example gives its own defaults.

/// The address and the worker count given on the command line (`None` where not given); on a bad
/// command line, says what is wrong and the usage of `program` on stderr and exits with status 2.
pub fn addr_and_workers_or_exit(program: &str) -> (Option<String>, Option<usize>) {
    match addr_and_workers(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{program}: {e}\nusage: {program} [ADDR] [--workers N]");
            std::process::exit(2);
        }
    }
}

/// The address (the one argument not starting with `-`) and the worker count (`--workers N` or
/// `--workers=N`, at least 1) in `args`.
fn addr_and_workers(
    args: impl Iterator<Item = String>,
) -> Result<(Option<String>, Option<usize>), String> {
    let mut addr = None;
    let mut workers = None;
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let n = if a == "--workers" {
            args.next().ok_or("--workers needs a number")?
        } else if let Some(n) = a.strip_prefix("--workers=") {
            n.to_owned()
        } else if addr.is_none() && !a.starts_with('-') {
            addr = Some(a);
            continue;
        } else {
            return Err(format!("unexpected argument {a:?}"));
        };
        workers = match n.parse::<usize>() {
            Ok(w @ 1..) => Some(w),
            _ => return Err(format!("--workers takes a number of at least 1, not {n:?}")),
        };
    }
    Ok((addr, workers))
}
