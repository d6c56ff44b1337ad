//! Transport security: TLS with certificates made here (rcgen), a client
//! that trusts the wrong authority or speaks plain HTTP/2 refused, and
//! mutual TLS refusing a client without a certificate from the right
//! authority.

use std::path::Path;

use muster_client::proto as pb;
use muster_client::{Client, Tls};
use muster_server::server::{TlsConfig, TokenConfig};
use muster_tests::{Options, TestServer};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const TOKEN: &str = "duty-secret-token-0123456789";

/// An authority that signs certificates.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Authority { cert, key }
    }

    /// A certificate for `names`, and its key, as PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let params = CertificateParams::new(names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> Vec<u8> {
        self.cert.pem().into_bytes()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn trusting(authority: &Authority) -> Tls {
    Tls { ca_cert: Some(authority.pem()), identity: None, domain: Some("localhost".into()) }
}

async fn list_teams(client: Result<Client, muster_client::ClientError>) -> Result<usize, String> {
    let client = client.map_err(|error| error.to_string())?;
    let teams =
        client.roster().list_teams(pb::ListTeamsRequest::default()).await.map_err(|status| status.to_string())?;
    Ok(teams.into_inner().teams.len())
}

async fn server(dir: &Path, server_ca: &Authority, client_ca: Option<&Authority>) -> TestServer {
    let (cert, key) = server_ca.issue(&["localhost"]);
    let tls = TlsConfig {
        cert: write(dir, "server.pem", &cert),
        key: write(dir, "server.key", &key),
        client_ca: client_ca.map(|ca| write(dir, "clients.pem", &String::from_utf8(ca.pem()).unwrap())),
    };
    let mut client_tls = trusting(server_ca);
    if let Some(client_ca) = client_ca {
        let (cert, key) = client_ca.issue(&["harness"]);
        client_tls.identity = Some((cert.into_bytes(), key.into_bytes()));
    }
    let tokens = vec![TokenConfig { name: "duty".into(), role: "commander".into(), token: TOKEN.into() }];
    TestServer::start_with(Options { tokens, tls: Some(tls), client_tls: Some(client_tls), ..Options::default() }).await
}

#[tokio::test]
async fn a_tls_server_serves_clients_that_trust_its_authority_and_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Muster test CA");
    let server = server(dir.path(), &authority, None).await;
    assert!(server.url.starts_with("https://"));

    let trusted = Client::connect_with(&server.url, Some(TOKEN), Some(&trusting(&authority))).await;
    assert_eq!(list_teams(trusted).await, Ok(0));

    let impostor = Authority::new("Someone else's CA");
    let distrusting = Client::connect_with(&server.url, Some(TOKEN), Some(&trusting(&impostor))).await;
    assert!(list_teams(distrusting).await.is_err(), "a client must not accept a certificate from another authority");

    let plain = server.url.replacen("https://", "http://", 1);
    assert!(list_teams(Client::connect(&plain, Some(TOKEN)).await).await.is_err(), "plain HTTP/2 is not served");

    // Tokens still apply over TLS.
    let anonymous = Client::connect_with(&server.url, None, Some(&trusting(&authority))).await.unwrap();
    let refused = anonymous.roster().list_teams(pb::ListTeamsRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn with_a_client_authority_only_clients_with_its_certificates_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Muster test CA");
    let clients = Authority::new("Muster clients CA");
    let server = server(dir.path(), &authority, Some(&clients)).await;

    let (cert, key) = clients.issue(&["duty-desk"]);
    let mut with_certificate = trusting(&authority);
    with_certificate.identity = Some((cert.into_bytes(), key.into_bytes()));
    let admitted = Client::connect_with(&server.url, Some(TOKEN), Some(&with_certificate)).await;
    assert_eq!(list_teams(admitted).await, Ok(0));

    let without = Client::connect_with(&server.url, Some(TOKEN), Some(&trusting(&authority))).await;
    assert!(list_teams(without).await.is_err(), "a client without a certificate is refused");

    let stranger_ca = Authority::new("Someone else's clients");
    let (cert, key) = stranger_ca.issue(&["intruder"]);
    let mut foreign = trusting(&authority);
    foreign.identity = Some((cert.into_bytes(), key.into_bytes()));
    let foreign = Client::connect_with(&server.url, Some(TOKEN), Some(&foreign)).await;
    assert!(list_teams(foreign).await.is_err(), "a certificate from another authority is refused");
}
