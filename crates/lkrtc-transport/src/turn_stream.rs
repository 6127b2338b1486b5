//! The connections to TURN servers reached over TCP (`turn:...?transport=tcp`) or TLS
//! (`turns:`): one per server, opened when the transport starts, carrying the TURN client's
//! messages back to back (RFC 8656 §12.5: STUN messages as they are, ChannelData padded to 4
//! bytes), so a message's own header tells where it ends. The transport's task sends what the
//! core's TURN clients queue and hands each whole message received back to the core.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::turn::{stream_message_len, TurnServer, TurnTransport};

/// Messages waiting for one connection's socket; a full queue drops, as a UDP socket would.
const SEND_QUEUE: usize = 512;
/// Messages received on all connections, waiting for the transport's task.
const RECV_QUEUE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest TURN message on a stream: a 16-bit length after a 4- or 20-byte header.
const MAX_MESSAGE: usize = 20 + u16::MAX as usize + 3;

/// What the connections report to the transport's task.
#[derive(Debug)]
pub(crate) enum TurnStreamEvent {
  /// One whole message from the TURN server at this address.
  Message(SocketAddr, Vec<u8>),
  /// The connection to this server could not be made, or ended, for this reason.
  Closed(SocketAddr, String),
}

struct Link {
  queue: mpsc::Sender<Vec<u8>>,
  task: JoinHandle<()>,
}

/// The transport's TURN connections. Dropping it closes them.
pub(crate) struct TurnStreams {
  links: HashMap<SocketAddr, Link>,
  events: mpsc::Sender<TurnStreamEvent>,
}

impl TurnStreams {
  pub fn new() -> (TurnStreams, mpsc::Receiver<TurnStreamEvent>) {
    let (events, rx) = mpsc::channel(RECV_QUEUE);
    (
      TurnStreams {
        links: HashMap::new(),
        events,
      },
      rx,
    )
  }

  /// Opens the connection to a TCP or TLS server (TLS with `tls`, checking that the
  /// certificate names the URL's host). Messages sent before it is up wait in its queue.
  pub fn open(&mut self, server: &TurnServer, tls: Option<Arc<rustls::ClientConfig>>) {
    if self.links.contains_key(&server.addr) || server.transport == TurnTransport::Udp {
      return;
    }
    let (queue, messages) = mpsc::channel(SEND_QUEUE);
    let secure = match server.transport {
      TurnTransport::Tls => match (tls, rustls::pki_types::ServerName::try_from(server.host.clone())) {
        (Some(config), Ok(name)) => Some((config, name)),
        _ => {
          tracing::warn!(host = %server.host, "no TLS for this TURN server");
          let why = format!(
            "no TLS configuration, or {:?} is no name a certificate can hold",
            server.host
          );
          let _ = self.events.try_send(TurnStreamEvent::Closed(server.addr, why));
          return;
        }
      },
      _ => None,
    };
    let task = tokio::spawn(run_link(server.addr, secure, messages, self.events.clone()));
    self.links.insert(server.addr, Link { queue, task });
  }

  pub fn send(&mut self, server: SocketAddr, message: Vec<u8>) {
    if let Some(link) = self.links.get(&server) {
      if link.queue.try_send(message).is_err() {
        tracing::trace!(%server, "TURN send queue full, message dropped");
      }
    }
  }

  /// Forgets a connection that reported `Closed`.
  pub fn closed(&mut self, server: SocketAddr) {
    if let Some(link) = self.links.remove(&server) {
      link.task.abort();
    }
  }
}

impl Drop for TurnStreams {
  fn drop(&mut self) {
    for link in self.links.values() {
      link.task.abort();
    }
  }
}

type Secure = (Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>);

async fn run_link(
  server: SocketAddr,
  secure: Option<Secure>,
  messages: mpsc::Receiver<Vec<u8>>,
  events: mpsc::Sender<TurnStreamEvent>,
) {
  let result: std::io::Result<()> = async {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
      .await
      .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    // Media is latency-bound: no Nagle delay on small packets.
    stream.set_nodelay(true)?;
    match secure {
      Some((config, name)) => {
        let tls = tokio::time::timeout(
          CONNECT_TIMEOUT,
          tokio_rustls::TlsConnector::from(config).connect(name, stream),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        pump(server, tls, messages, &events).await
      }
      None => pump(server, stream, messages, &events).await,
    }
  }
  .await;
  let why = match result {
    Ok(()) => "closed".to_owned(),
    Err(e) => {
      tracing::warn!(%server, "TURN connection ended: {e}");
      e.to_string()
    }
  };
  let _ = events.send(TurnStreamEvent::Closed(server, why)).await;
}

/// Writes the queued messages and reads the server's until either side ends.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
  server: SocketAddr,
  stream: S,
  mut messages: mpsc::Receiver<Vec<u8>>,
  events: &mpsc::Sender<TurnStreamEvent>,
) -> std::io::Result<()> {
  let (read, write) = tokio::io::split(stream);
  let reading = async {
    let mut read = BufReader::new(read);
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
      let n = read_message(&mut read, &mut buf).await?;
      if events
        .send(TurnStreamEvent::Message(server, buf[..n].to_vec()))
        .await
        .is_err()
      {
        return Ok(());
      }
    }
  };
  let writing = crate::tcp::write_queued(write, &mut messages);
  tokio::select! {
    r = reading => r,
    r = writing => r,
  }
}

/// Reads one TURN message into `buf` (at least `MAX_MESSAGE` long); returns its length.
/// Bytes that start no TURN message end the connection: the stream cannot be resynchronized.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(read: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
  read.read_exact(&mut buf[..4]).await?;
  let header = [buf[0], buf[1], buf[2], buf[3]];
  let len = stream_message_len(header).ok_or_else(|| {
    std::io::Error::new(
      std::io::ErrorKind::InvalidData,
      "not a TURN message on the TURN connection",
    )
  })?;
  read.read_exact(&mut buf[4..len]).await?;
  Ok(len)
}

#[cfg(test)]
mod tests {
  use super::*;
  use tokio::io::AsyncWriteExt;

  #[tokio::test]
  async fn messages_read_back_whole_across_split_writes() {
    let (mut a, mut b) = tokio::io::duplex(64);
    // A STUN message (20-byte header, 8-byte body) and ChannelData of 5 bytes padded to 8.
    let mut stun = vec![0x01, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[1; 8]);
    let channel = vec![0x40, 0x00, 0x00, 0x05, b'm', b'e', b'd', b'i', b'a', 0, 0, 0];
    let sent = [stun.clone(), channel.clone()];
    let writer = tokio::spawn(async move {
      for byte in sent.concat() {
        a.write_all(&[byte]).await.unwrap();
      }
    });
    let mut buf = vec![0u8; MAX_MESSAGE];
    let n = read_message(&mut b, &mut buf).await.unwrap();
    assert_eq!(&buf[..n], &stun[..]);
    let n = read_message(&mut b, &mut buf).await.unwrap();
    assert_eq!(&buf[..n], &channel[..]);
    writer.await.unwrap();
    assert!(read_message(&mut b, &mut buf).await.is_err());
  }

  #[tokio::test]
  async fn bytes_that_start_no_turn_message_end_the_stream() {
    let (mut a, mut b) = tokio::io::duplex(64);
    a.write_all(&[0x80, 0x60, 0x00, 0x01, 0, 0, 0, 0]).await.unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let e = read_message(&mut b, &mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
  }
}
