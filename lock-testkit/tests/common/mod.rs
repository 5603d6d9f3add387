//! What the test kit's own tests share.
// `pub` reaches the test file using it.
#![allow(unreachable_pub)]

use std::process::Command;

/// `redis-cli -p <port> <args>`: its output, trimmed.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
