//! Published test vectors, read from ../shared/vectors (each file cites its source there).
//!
//! Each test prints why and returns when the folder is absent; a few spec values typed into the
//! unit tests (keystore, hd and totp modules) run regardless.

use std::fs;
use std::path::Path;

use keyward::hd::{self, ExtendedKey};
use keyward::keystore::Keystore;
use keyward::secret::{ExtendedPrivateKey, Secret};
use serde_json::Value;

use crate::support::shared_vectors;

fn read_json(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&fs::read(dir.join(name)).unwrap()).unwrap()
}

/// Decrypts a `{name: {json, password, priv}}` keystore vector file and checks every key,
/// left-padding the expected key for the 30- and 31-byte cases.
fn check_keystore_vectors(dir: &Path, name: &str) -> usize {
    let cases = read_json(dir, name);
    let cases = cases.as_object().unwrap();
    for (case, vector) in cases {
        let file = serde_json::to_vec(&vector["json"]).unwrap();
        let password = Secret::new(vector["password"].as_str().unwrap().to_owned());
        let key = Keystore::parse(&file)
            .unwrap_or_else(|err| panic!("{name}/{case}: {err}"))
            .decrypt(&password)
            .unwrap_or_else(|err| panic!("{name}/{case}: {err}"));
        let expected = format!("{:0>64}", vector["priv"].as_str().unwrap());
        assert_eq!(hex::encode(key.expose_secret()), expected, "{name}/{case}");
    }
    cases.len()
}

#[test]
fn geth_v3_keystore_vectors_decrypt() {
    let Some(dir) = shared_vectors() else { return };
    // scrypt r=1 p=8, pbkdf2 c=262144, and the 31- and 30-byte keys.
    assert_eq!(
        check_keystore_vectors(&dir, "geth-keystore/v3_test_vector.json"),
        4
    );
}

#[test]
fn ethereum_tests_keystore_vectors_decrypt() {
    let Some(dir) = shared_vectors() else { return };
    // Includes `evilnonce` (iv ff…ff: the counter wraps at 128 bits) and a 16-byte salt.
    let count = check_keystore_vectors(&dir, "ethereum-tests-KeyStoreTests-basic_tests.json");
    assert_eq!(count, 5);
}

#[test]
fn geth_very_light_scrypt_with_empty_password() {
    let Some(dir) = shared_vectors() else { return };
    let file = fs::read(dir.join("geth-keystore/very-light-scrypt.json")).unwrap();
    let key = Keystore::parse(&file)
        .unwrap()
        .decrypt(&Secret::new(String::new()))
        .unwrap();
    assert_eq!(
        hex::encode(key.address()),
        "45dea0fb0bba44f4fcf290bba71fd57d7117cbb8"
    );
}

#[test]
fn geth_keystore_directory_files() {
    let Some(dir) = shared_vectors() else { return };
    let password = Secret::new("foobar".to_owned());
    for (file, address) in [
        (
            "UTC--2016-03-22T12-57-55.920751759Z--7ef5a6135f1fd6a02593eedc869c6d41d934aef8",
            "7ef5a6135f1fd6a02593eedc869c6d41d934aef8",
        ),
        ("aaa", "f466859ead1932d743d622cb74fc058882e8648a"),
        ("zzz", "289d485d9771714cce91d3393d764e1311907acc"),
        // Same key as aaa without the optional address field: still importable.
        ("no-address", "f466859ead1932d743d622cb74fc058882e8648a"),
    ] {
        let bytes = fs::read(dir.join("geth-keystore/keystore").join(file)).unwrap();
        let key = Keystore::parse(&bytes).unwrap().decrypt(&password).unwrap();
        assert_eq!(hex::encode(key.address()), address, "{file}");
    }
}

#[test]
fn ethereum_org_vectors_pbkdf2_decrypts_and_broken_scrypt_fails_the_mac() {
    let Some(dir) = shared_vectors() else { return };
    let vectors = read_json(&dir, "ethereum-org-web3-secret-storage-vectors.json");
    let password = Secret::new("testpassword".to_owned());

    let pbkdf2 = serde_json::to_vec(&vectors["pbkdf2_sha256"]["json"]).unwrap();
    let key = Keystore::parse(&pbkdf2)
        .unwrap()
        .decrypt(&password)
        .unwrap();
    assert_eq!(
        hex::encode(key.expose_secret()),
        vectors["pbkdf2_sha256"]["priv"].as_str().unwrap()
    );

    // The published scrypt vector was derived from the salt's hex text, not its bytes; a correct
    // decoder reports a MAC mismatch, as geth and eth-account do.
    let scrypt = serde_json::to_vec(&vectors["scrypt"]["json"]).unwrap();
    let err = Keystore::parse(&scrypt)
        .unwrap()
        .decrypt(&password)
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid password or corrupted keystore");
}

#[test]
fn bip39_english_vectors_with_passphrase_trezor() {
    let Some(dir) = shared_vectors() else { return };
    let vectors = read_json(&dir, "bip39-trezor-vectors.json");
    let english = vectors["english"].as_array().unwrap();
    assert_eq!(english.len(), 24);
    for vector in english {
        let [entropy, phrase, seed, xprv] = [0, 1, 2, 3].map(|i| vector[i].as_str().unwrap());
        let from_entropy = hd::from_entropy(&hex::decode(entropy).unwrap()).unwrap();
        assert_eq!(from_entropy.expose_secret().to_string(), phrase);

        let parsed = hd::parse_phrase(phrase).unwrap();
        assert_eq!(hex::encode(parsed.entropy().expose_secret()), entropy);
        let derived_seed = parsed.seed("TREZOR");
        assert_eq!(hex::encode(derived_seed.expose_secret()), seed, "{phrase}");

        let root = ExtendedPrivateKey::from_seed(derived_seed.expose_secret()).unwrap();
        assert_eq!(root.expose_secret().to_base58().as_str(), xprv, "{phrase}");
    }
}

/// One chain of a BIP-32 test vector.
struct Chain {
    seed: Vec<u8>,
    path: String,
    xpub: String,
    xprv: String,
}

/// Reads vectors 1-4 from the BIP's mediawiki text, and the invalid keys of vector 5.
fn bip32_vectors(text: &str) -> (Vec<Chain>, Vec<(String, String)>) {
    let mut chains = Vec::new();
    let mut invalid = Vec::new();
    let (mut seed, mut path, mut xpub) = (Vec::new(), String::new(), String::new());
    let mut in_vector_5 = false;
    for line in text.lines() {
        if line.starts_with("===Test vector 5") {
            in_vector_5 = true;
        } else if in_vector_5 {
            if let Some(rest) = line.strip_prefix("* ") {
                let (key, reason) = rest.split_once(' ').unwrap();
                invalid.push((key.to_owned(), reason.trim_matches(['(', ')']).to_owned()));
            }
        } else if let Some(hex_seed) = line.strip_prefix("Seed (hex): ") {
            seed = hex::decode(hex_seed.trim()).unwrap();
        } else if let Some(chain) = line.strip_prefix("* Chain ") {
            path = chain.replace("<sub>H</sub>", "'");
        } else if let Some(key) = line.strip_prefix("** ext pub: ") {
            xpub = key.trim().to_owned();
        } else if let Some(key) = line.strip_prefix("** ext prv: ") {
            chains.push(Chain {
                seed: seed.clone(),
                path: path.clone(),
                xpub: xpub.clone(),
                xprv: key.trim().to_owned(),
            });
        }
    }
    (chains, invalid)
}

#[test]
fn bip32_vectors_1_to_4_derive() {
    let Some(dir) = shared_vectors() else { return };
    let text = fs::read_to_string(dir.join("bip32-test-vectors.mediawiki.txt")).unwrap();
    let (chains, _) = bip32_vectors(&text);
    assert_eq!(chains.len(), 6 + 6 + 2 + 3, "vectors 1-4 have 17 chains");
    for chain in &chains {
        let node = ExtendedPrivateKey::from_seed(&chain.seed)
            .unwrap()
            .derive(&chain.path)
            .unwrap();
        assert_eq!(node.public().to_base58(), chain.xpub, "{}", chain.path);
        assert_eq!(
            node.expose_secret().to_base58().as_str(),
            chain.xprv,
            "{}",
            chain.path
        );
        // And both serializations parse back under the strict rules.
        ExtendedKey::parse(&chain.xprv).unwrap();
        ExtendedKey::parse(&chain.xpub).unwrap();
    }
}

#[test]
fn bip32_vector_5_invalid_keys_are_all_rejected() {
    let Some(dir) = shared_vectors() else { return };
    let text = fs::read_to_string(dir.join("bip32-test-vectors.mediawiki.txt")).unwrap();
    let (_, invalid) = bip32_vectors(&text);
    assert_eq!(invalid.len(), 16);
    for (key, reason) in &invalid {
        let result = ExtendedKey::parse(key);
        assert!(result.is_err(), "accepted an invalid key ({reason}): {key}");
    }
}

#[test]
fn anvil_default_accounts_derive_from_its_mnemonic() {
    let Some(dir) = shared_vectors() else { return };
    let vectors = read_json(&dir, "anvil-default-accounts.json");
    let phrase = hd::parse_phrase(vectors["mnemonic"].as_str().unwrap()).unwrap();
    let accounts = vectors["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 10);
    for (index, account) in accounts.iter().enumerate() {
        let key = phrase.account_key(index as u32).unwrap();
        assert_eq!(
            key.address().to_checksum(None),
            account["address"].as_str().unwrap(),
            "account {index}"
        );
    }
}
