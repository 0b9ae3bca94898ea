CREATE DATABASE IF NOT EXISTS skuflow;

CREATE TABLE IF NOT EXISTS skuflow.`products`
(
    `sku` String,
    `name` String,
    `description` String,
    `extra` String,
    `_job` String,
    `_source` String,
    `_line` UInt64,
    `_partition` UInt32,
    `_offset` UInt64,
    `_version` UInt64,
    `_ingested_at` DateTime
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (`sku`);
