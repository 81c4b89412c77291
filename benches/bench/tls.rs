//! The bench's TLS material: a CA generated per bench run and a leaf it signed for 127.0.0.1,
//! as a rustls server configuration (the receiver's) and a PEM file (the daemon's
//! `delivery.ca_file`, the libcurl peer's `CURLOPT_CAINFO`).

use crate::procs::Scratch;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct BenchCa {
    _dir: Scratch,
    ca_file: PathBuf,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    pub server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl BenchCa {
    pub fn new() -> Result<BenchCa, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let e = |what: &str| {
            let what = what.to_string();
            move |err: rcgen::Error| format!("{what}: {err}")
        };
        let ca_key = KeyPair::generate().map_err(e("CA key"))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e("CA params"))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "event-notify bench CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(e("CA certificate"))?;

        let leaf_key = KeyPair::generate().map_err(e("leaf key"))?;
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(e("leaf params"))?;
        leaf.distinguished_name
            .push(DnType::CommonName, "event-notify bench receiver");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .map_err(e("leaf certificate"))?;

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
            .map_err(|e| format!("server certificate: {e}"))?;
        let dir = Scratch::new("ca")?;
        let ca_file = dir.write("ca.pem", &ca_cert.pem())?;
        Ok(BenchCa {
            _dir: dir,
            ca_file,
            ca_der: ca_cert.der().clone(),
            server: Arc::new(server),
        })
    }

    /// The CA certificate as a PEM file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A rustls client configuration that trusts only this CA (to drive the receiver alone).
    pub fn client(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|e| format!("add CA: {e}"))?;
        Ok(Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS versions: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }
}
