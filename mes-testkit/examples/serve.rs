//! Run a test primary by hand: `cargo run -p mes-testkit --example serve -- [--tls] [--warm]`.
//! Account `repl` / `secret` (caching_sha2_password) and `native` / `secret`
//! (mysql_native_password); serves mysql-binlog-connector-rust/mysql-bin.000057 when the
//! corpus is present. Runs until killed.

use mes_testkit::{AuthPlugin, PrimaryConfig, TestPrimary, corpus_file};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut cfg = PrimaryConfig::new()
        .account("repl", "secret", AuthPlugin::CachingSha2Password)
        .account("native", "secret", AuthPlugin::MysqlNativePassword)
        .tls(args.iter().any(|a| a == "--tls"));
    if args.iter().any(|a| a == "--warm") {
        cfg = cfg.warm_cache("repl");
    }
    if let Some(f) = corpus_file("mysql-binlog-connector-rust/mysql-bin.000057") {
        cfg = cfg.binlog_file(f);
    }
    let primary = TestPrimary::start(cfg)?;
    println!("listening on {}", primary.addr());
    if let Some(ca) = primary.ca_pem_path() {
        println!("CA: {}", ca.display());
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
