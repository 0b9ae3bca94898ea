// Package config is the one place that reads configuration: a YAML file
// (skuflow.yaml), SKUFLOW_* environment variables and command-line flags, in
// rising order of precedence, unmarshalled once into typed structs. Every
// default lives in Default; Validate says which key is wrong and why.
// Components receive the structs and never see viper.
package config
