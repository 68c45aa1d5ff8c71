//! Ports for tests that stop an emulator and start it again on the same address.

use std::net::SocketAddr;

/// A free loopback address below the kernel's ephemeral range (32768 and up). Once released,
/// no other test's port-0 bind can be given it, so a test can check that it is really free, or
/// take it back.
pub fn outside_ephemeral_range() -> SocketAddr {
    let start = 20_000 + (std::process::id() % 4_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free port below 32000")
        .local_addr()
        .expect("a bound address")
}
