//! Test fixtures, one module per concern: Apache Kafka ([`kafka`]: one broker per test binary,
//! or per test), Azurite ([`azurite`]), moto ([`moto`]) and Iceberg's REST catalog
//! ([`iceberg_rest`]) per test (on free loopback ports,
//! stopped on drop), producing records ([`produce`]), the hubcap binary ([`binary`]), reading an
//! archive back with independent readers ([`archive`]), a cuttable proxy ([`proxy`]) and the
//! test tools' paths ([`env`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;

pub mod archive;
pub mod azurite;
pub mod binary;
pub mod env;
pub mod iceberg_rest;
pub mod kafka;
pub mod moto;
pub mod produce;
pub mod proxy;
pub mod tables;

// Every fixture by its name too, for the tests written before the split.
#[allow(unused_imports)]
pub use {
    archive::*, azurite::*, binary::*, env::*, iceberg_rest::IcebergRest, kafka::Kafka, moto::*,
    produce::*, proxy::*, tables::*,
};
