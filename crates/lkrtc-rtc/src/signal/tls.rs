//! TLS for `wss://`: rustls (ring) trusting the public roots of webpki-roots plus the CA
//! certificates a caller adds, and TLS failures told apart from other connect failures.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::{RtcError, RtcResult};

/// What `ca_certificates` must hold, for error messages.
const EXPECTED: &str = "PEM text with one or more \"-----BEGIN CERTIFICATE-----\" sections";

/// The client configuration for signalling over `wss://`: webpki-roots, plus every certificate
/// of `ca_certificates` (PEM) as an extra trust anchor.
pub fn client_config(ca_certificates: Option<&str>) -> RtcResult<Arc<ClientConfig>> {
  let mut roots = RootCertStore::empty();
  roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
  if let Some(pem) = ca_certificates {
    for (i, der) in parse_ca_certificates(pem)?.into_iter().enumerate() {
      roots.add(der).map_err(|e| RtcError::InvalidCertificate {
        reason: format!("certificate {} is not a usable X.509 CA certificate: {e}", i + 1),
      })?;
    }
  }
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let config = ClientConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .map_err(|e| RtcError::Signal(format!("tls setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
  Ok(Arc::new(config))
}

/// The DER certificates of PEM text. Sections of other kinds (keys, ...) are skipped; text with
/// no certificate at all is an error.
fn parse_ca_certificates(text: &str) -> RtcResult<Vec<CertificateDer<'static>>> {
  let invalid = |what: String| RtcError::InvalidCertificate {
    reason: format!("expected {EXPECTED}, {what}"),
  };
  let certificates = CertificateDer::pem_slice_iter(text.as_bytes())
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| {
      invalid(match e {
        pem::Error::MissingSectionEnd { .. } => "but a section has no matching \"-----END\" line".into(),
        pem::Error::IllegalSectionStart { .. } => "but a \"-----BEGIN\" line is malformed".into(),
        pem::Error::Base64Decode(e) => format!("but a section is not valid base64 ({e})"),
        other => format!("but it does not parse ({other})"),
      })
    })?;
  if certificates.is_empty() {
    return Err(invalid("got none".into()));
  }
  Ok(certificates)
}

/// The error for a failed TLS handshake with `host` at `address`, in words a user can act on.
pub fn handshake_error(err: &rustls::Error, host: &str, address: String) -> RtcError {
  let reason = match err {
    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
      "the server's certificate is not signed by a trusted certificate authority (a private CA can be \
       trusted with the ca_certificates option, caCertificates in Node)"
        .to_string()
    }
    rustls::Error::InvalidCertificate(
      CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
    ) => format!("the server's certificate is not valid for the host name {host:?} ({err})"),
    rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
      format!("the server's certificate has expired ({err})")
    }
    // webpki's error inside rustls' `Other`: a self-signed certificate made with `CA:TRUE`
    // (openssl's default for `req -x509`) cannot also be the server's certificate.
    rustls::Error::InvalidCertificate(CertificateError::Other(other))
      if format!("{other:?}").contains("CaUsedAsEndEntity") =>
    {
      "the server's certificate is a CA certificate (basicConstraints CA:TRUE), which is not accepted as a \
       server certificate: serve a certificate issued by that CA, or make the self-signed one without CA:TRUE"
        .to_string()
    }
    rustls::Error::InvalidCertificate(_) => format!("the server's certificate was rejected: {err}"),
    rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
      format!("{err} (does the server speak TLS on this port? ws:// is plain, wss:// is TLS)")
    }
    other => other.to_string(),
  };
  RtcError::Tls { address, reason }
}

/// The rustls error inside an I/O error, as tokio-rustls reports handshake failures.
pub fn rustls_error(err: &std::io::Error) -> Option<&rustls::Error> {
  err.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
  use super::*;

  fn reason(err: RtcError) -> String {
    assert_eq!(err.code(), "ERR_INVALID_CERTIFICATE", "{err}");
    err.to_string()
  }

  fn ca_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
  }

  #[test]
  fn every_certificate_of_the_pem_text_is_parsed() {
    let text = format!("{}{}", ca_pem("first CA"), ca_pem("second CA"));
    assert_eq!(parse_ca_certificates(&text).unwrap().len(), 2);
    client_config(Some(&text)).expect("both are usable trust anchors");
  }

  #[test]
  fn sections_of_other_kinds_are_skipped() {
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let text = format!("{key}{}", ca_pem("CA"));
    assert_eq!(parse_ca_certificates(&text).unwrap().len(), 1);
  }

  #[test]
  fn text_without_a_certificate_is_invalid_and_says_what_was_expected() {
    for text in [
      "",
      "hello",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
      let message = reason(client_config(Some(text)).unwrap_err());
      assert!(message.contains("-----BEGIN CERTIFICATE-----"), "{message}");
      assert!(message.contains("got none"), "{message}");
    }
  }

  #[test]
  fn a_section_without_an_end_line_is_invalid() {
    let message = reason(client_config(Some("-----BEGIN CERTIFICATE-----\nMIIB\n")).unwrap_err());
    assert!(message.contains("no matching \"-----END\" line"), "{message}");
  }

  #[test]
  fn a_section_that_is_not_base64_is_invalid() {
    let text = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
    let message = reason(client_config(Some(text)).unwrap_err());
    assert!(message.contains("not valid base64"), "{message}");
  }

  #[test]
  fn a_certificate_section_that_is_not_x509_is_invalid() {
    let text = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let message = reason(client_config(Some(text)).unwrap_err());
    assert!(
      message.contains("certificate 1 is not a usable X.509 CA certificate"),
      "{message}"
    );
  }

  #[test]
  fn the_tls_error_for_an_unknown_issuer_names_the_option() {
    let err = handshake_error(
      &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
      "example.com",
      "example.com:443".into(),
    );
    assert_eq!(err.code(), "ERR_TLS");
    let message = err.to_string();
    assert!(message.contains("example.com:443"), "{message}");
    assert!(
      message.contains("not signed by a trusted certificate authority"),
      "{message}"
    );
    assert!(message.contains("ca_certificates"), "{message}");
  }
}
