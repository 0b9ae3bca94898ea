package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix starts every environment variable skuflow reads:
// SKUFLOW_KAFKA_BROKERS sets kafka.brokers, and so on.
const EnvPrefix = "SKUFLOW"

// DefaultFile is read from the working directory when no file is named.
const DefaultFile = "skuflow.yaml"

// Options says where Load reads from.
type Options struct {
	// File is the YAML file to read. When empty, $SKUFLOW_CONFIG is used,
	// then DefaultFile if it exists; a named file that is missing is an error.
	File string
	// Flags are the command's parsed flags; Bind maps a flag name to the
	// configuration key it sets (only flags the user set override).
	Flags *pflag.FlagSet
	Bind  map[string]string
}

// Load reads the configuration from defaults, file, environment and flags,
// and validates it.
func Load(o Options) (Config, error) {
	v := viper.New()
	for key, val := range flatten(Default()) {
		v.SetDefault(key, val)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	file, explicit := o.File, o.File != ""
	if !explicit {
		file, explicit = os.LookupEnv(EnvPrefix + "_CONFIG")
	}
	if !explicit {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	for name, key := range o.Bind {
		f := o.Flags.Lookup(name)
		if f == nil {
			return Config{}, fmt.Errorf("config: flag --%s bound to %s is not defined", name, key)
		}
		if err := v.BindPFlag(key, f); err != nil {
			return Config{}, fmt.Errorf("config: bind --%s to %s: %w", name, key, err)
		}
	}

	var c Config
	hook := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.TextUnmarshallerHookFunc(),
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))
	if err := v.UnmarshalExact(&c, hook); err != nil {
		where := "configuration"
		if file != "" {
			where = file
		}
		return Config{}, fmt.Errorf("%s: %w", where, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := c.readSecrets(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return c, nil
}

// Keys lists every configuration key, as written in a file.
func Keys() []string {
	var keys []string
	for k := range flatten(Default()) {
		keys = append(keys, k)
	}
	return keys
}

// flatten turns a struct into "section.key" -> value using its mapstructure
// tags, so that every key has a default (viper only reads the environment
// for keys it knows).
func flatten(c Config) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			name := t.Field(i).Tag.Get("mapstructure")
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			if f := v.Field(i); f.Kind() == reflect.Struct {
				walk(key, f)
			} else {
				out[key] = f.Interface()
			}
		}
	}
	walk("", reflect.ValueOf(c))
	return out
}

// IsKeyError reports whether err names a bad key, and which.
func IsKeyError(err error, key string) bool {
	var ke *KeyError
	for _, e := range unwrapAll(err) {
		if errors.As(e, &ke) && ke.Key == key {
			return true
		}
	}
	return false
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range j.Unwrap() {
			all = append(all, unwrapAll(e)...)
		}
		return all
	}
	if u := errors.Unwrap(err); u != nil {
		return append([]error{err}, unwrapAll(u)...)
	}
	return []error{err}
}
