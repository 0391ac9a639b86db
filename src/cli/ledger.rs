//! `keyward ledger list` and `keyward ledger add`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use keyward_hardware::{AppConfiguration, DerivationPath, Display};

use super::password::PasswordSource;
use super::say;
use crate::config::{Config, LedgerSettings, LedgerTransport};
use crate::home::Home;
use crate::keystore::{Label, Vault};
use crate::signer::ledger::Ledger;

/// The [ledger] settings of the configuration, or the defaults (USB) when there is no file.
fn settings(home: &Home, config: Option<PathBuf>) -> Result<LedgerSettings> {
    let path = config.unwrap_or_else(|| home.config_dir().join("keyward.toml"));
    if !path.exists() {
        return Ok(LedgerSettings::default());
    }
    Ok(Config::load(&path)?.ledger)
}

fn describe(configuration: &AppConfiguration) -> String {
    format!(
        "Ethereum app {}, blind signing {}",
        configuration.version_text(),
        if configuration.blind_signing {
            "on"
        } else {
            "off"
        }
    )
}

#[tracing::instrument(level = "info", skip_all, fields(command = "ledger list"))]
pub(super) fn list(home: &Home, config: Option<PathBuf>) -> Result<()> {
    let settings = settings(home, config)?;
    if settings.transport == LedgerTransport::Hid {
        return list_usb(&settings);
    }
    let ledger = Ledger::new(&settings)?;
    let wait = ledger.wait();
    let configuration = ledger.open(&wait)?.configuration(&wait)?;
    say(&format!(
        "{}: {}",
        ledger.describe(),
        describe(&configuration)
    ))
}

#[cfg(feature = "hid")]
fn list_usb(settings: &LedgerSettings) -> Result<()> {
    let devices = keyward_hardware::list_devices()?;
    if devices.is_empty() {
        bail!(
            "no Ledger found on USB: plug it in and unlock it; on Linux, install the udev rules \
             from hardware/udev/20-ledger.rules (see hardware/README.md)"
        );
    }
    for device in devices {
        let wait = keyward_hardware::Wait::new(Some(settings.timeout));
        let state = keyward_hardware::HidTransport::open(&device.path)
            .map_err(keyward_hardware::DeviceError::from)
            .and_then(|transport| keyward_hardware::EthApp::new(transport).configuration(&wait));
        let state = match state {
            Ok(configuration) => describe(&configuration),
            Err(err) => err.to_string(),
        };
        say(&format!("{} ({}): {state}", device.product, device.path))?;
    }
    Ok(())
}

#[cfg(not(feature = "hid"))]
fn list_usb(_: &LedgerSettings) -> Result<()> {
    bail!("this keyward was built without USB support (the hid feature)")
}

#[tracing::instrument(level = "info", skip_all, fields(command = "ledger add"))]
pub(super) fn add(
    home: &Home,
    path: &str,
    label: &str,
    config: Option<PathBuf>,
    password_file: Option<PathBuf>,
) -> Result<()> {
    let path = DerivationPath::parse(path)?;
    let label = Label::new(label)?;
    let ledger = Arc::new(Ledger::new(&settings(home, config)?)?);
    let lock = home.lock_vault()?;
    let vault_path = home.vault_path();
    let vault = Vault::load(&vault_path)?;
    let password = PasswordSource::new(password_file, "vault").existing(&mut None)?;
    let mut unlocked = vault.unlock(&password)?;

    let wait = ledger.wait();
    let app = ledger.open(&wait)?;
    let read = app
        .address(&path, Display::Silent, false, None, &wait)
        .context("reading the address from the Ledger")?;
    say(&format!(
        "The Ledger has {} at {path}.\nCheck that its screen shows the same address, then \
         approve it there (or reject to cancel).",
        read.address.to_checksum(None)
    ))?;
    let shown = app
        .address(&path, Display::OnDevice, false, None, &wait)
        .context("showing the address on the Ledger")?;
    if shown.address != read.address {
        bail!(
            "the Ledger showed {} after reporting {}: nothing was added; reconnect it and try \
             again",
            shown.address,
            read.address
        );
    }
    let account = unlocked.add_ledger(&path, shown.address, label)?.clone();
    unlocked.save(&vault_path, &lock)?;
    say(&format!(
        "Added account {} ({}): {} on the Ledger at {path}",
        unlocked.accounts().len() - 1,
        account.label,
        account.address.to_checksum(None),
    ))
}
