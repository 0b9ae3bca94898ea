package config

import (
	"fmt"
	"maps"
	"slices"

	"skuflow/schemas"
)

// BuiltinType is the record type skuflow has without configuration.
const BuiltinType = "products"

// inboxFolders are the watcher's folders inside an inbox, beside the
// folders of the types (inbox/TYPE/): no type may be called so.
var inboxFolders = []string{"processing", "done", "failed"}

// bookkeepingNames are tables every type shares; no type may take them.
var bookkeepingNames = []string{"ingest_jobs", "ingest_errors", "topics"}

// Schemas returns every record type: products, on kafka.topic, then the
// declared types by name. The configuration must have passed Validate.
func (c *Config) Schemas() []*schemas.Schema {
	products := schemas.Products
	if c.Kafka.Topic != products.Topic {
		cp := *products
		cp.Topic = c.Kafka.Topic
		products = &cp
	}
	out := []*schemas.Schema{products}
	for _, name := range slices.Sorted(maps.Keys(c.Types)) {
		s, _ := c.Types[name].Schema(name)
		out = append(out, s)
	}
	return out
}

// Schema returns the record type called name.
func (c *Config) Schema(name string) (*schemas.Schema, error) {
	var names []string
	for _, s := range c.Schemas() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("no record type %q: the types are %v (declare more under types: in the configuration)", name, names)
}

// For returns the configuration the services of record type s run with:
// kafka.topic is the type's topic, kafka.partitions its partitions when it
// declares them, and the consumer groups are the type's own. Products
// keeps processor.group and aggregator.group; another type T has groups
// "<group>-T", so that each type's progress is its own.
func (c Config) For(s *schemas.Schema) Config {
	c.Kafka.Topic = s.Topic
	if s.Partitions > 0 {
		c.Kafka.Partitions = s.Partitions
	}
	if s.Name != BuiltinType {
		c.Processor.Group += "-" + s.Name
		c.Aggregator.Group += "-" + s.Name
	}
	return c
}

// validateTypes reports every problem of the declared types, each named
// by its key (types.events.key[1]), and names or topics two types share.
func (c *Config) validateTypes(bad func(string, string, ...any)) {
	owner := map[string]string{}  // ClickHouse name -> type
	topics := map[string]string{} // topic -> type
	claim := func(s *schemas.Schema, key string) {
		for _, n := range s.Names() {
			if other, ok := owner[n]; ok && other != s.Name {
				bad(key, "%q is also a table or view of type %s", n, other)
			}
			owner[n] = s.Name
		}
		if other, ok := topics[s.Topic]; ok {
			bad(key+".topic", "topic %q is also type %s's: each type needs its own topic", s.Topic, other)
		}
		topics[s.Topic] = s.Name
	}
	for _, n := range bookkeepingNames {
		owner[n] = "skuflow's bookkeeping"
	}
	claim(c.Schemas()[0], "kafka.topic")
	for _, name := range slices.Sorted(maps.Keys(c.Types)) {
		key := "types." + name
		if name == BuiltinType {
			bad(key, "products is built in; declare another name")
			continue
		}
		if slices.Contains(inboxFolders, name) {
			bad(key, "%q is a folder of the products inbox; declare another name", name)
			continue
		}
		s, problems := c.Types[name].Schema(name)
		for _, p := range problems {
			if p.Path == "name" {
				bad(key, "%s", p.Reason)
				continue
			}
			bad(key+"."+p.Path, "%s", p.Reason)
		}
		if len(problems) == 0 {
			claim(s, key)
		}
	}
}

// Select returns the record types named, or every type when names is
// empty (a --types flag).
func (c *Config) Select(names []string) ([]*schemas.Schema, error) {
	if len(names) == 0 {
		return c.Schemas(), nil
	}
	var out []*schemas.Schema
	for _, name := range names {
		s, err := c.Schema(name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// LoadGroups are the consumer groups a job of type s is done for, in the
// configuration of that type (For): the processor's, and the aggregator's
// when the type has aggregates.
func (c Config) LoadGroups(s *schemas.Schema) []string {
	if len(s.Aggregates) == 0 {
		return []string{c.Processor.Group}
	}
	return []string{c.Processor.Group, c.Aggregator.Group}
}
