//! A tcp probe: a connection to `host:port` is success; it is closed at once.

pub async fn check(host: &str, port: u16) -> Result<String, String> {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(_) => Ok("connected".into()),
        Err(e) => Err(super::chain::chain(&e)),
    }
}
