//! Ports for tests that stop an emulator and start it again on the same address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};

/// A free loopback address below the kernel's ephemeral range (32768 and up). Once released,
/// no other test's port-0 bind can be given it, so a test can check that it is really free, or
/// take it back. Each call in a process starts its search past the previous answer, so tests
/// running at once in one process never get the same port.
pub fn outside_ephemeral_range() -> SocketAddr {
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() % u32::from(SPAN)) as u16;
    let offset = NEXT.fetch_add(1, Ordering::Relaxed);
    let start = LOW + (base.wrapping_add(offset.wrapping_mul(97))) % SPAN;
    (start..LOW + SPAN)
        .chain(LOW..start)
        .find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free port below 32000")
        .local_addr()
        .expect("a bound address")
}

#[cfg(test)]
mod tests {
    #[test]
    fn successive_calls_give_different_ports() {
        let ports: std::collections::HashSet<_> = (0..20).map(|_| super::outside_ephemeral_range().port()).collect();
        assert_eq!(ports.len(), 20);
    }
}
