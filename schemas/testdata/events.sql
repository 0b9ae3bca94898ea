CREATE DATABASE IF NOT EXISTS skuflow;

CREATE TABLE IF NOT EXISTS skuflow.`events`
(
    `id` String,
    `ts` Int64,
    `kind` String,
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
ORDER BY (`id`, `ts`);
