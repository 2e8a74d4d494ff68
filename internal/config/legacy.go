package config

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// moved lists the keys of the numbering section that have a section of
// their own now: old path under numbering → new path from the top. A file
// in the old layout still starts: Parse moves each key to its place and
// says so in a warning naming both.
var moved = []struct{ old, new string }{
	{"store", "store.path"},
	{"engine", "store.engine"},
	{"etcd", "store.etcd"},
	{"listen", "ltnp.listen"},
	{"trusted", "ltnp.trusted"},
	{"limits.register_rate", "ltnp.limits.register_rate"},
	{"sip", "sip"},
	{"dns", "dns"},
	{"provisioning", "provisioning"},
	{"tftp", "tftp"},
	{"admin", "admin.listen"},
	{"admin_hosts", "admin.hosts"},
	{"admin_token", "admin.token"},
	{"admin_token_file", "admin.token_file"},
	{"log", "log"},
}

// migrate moves the keys of the old layout in doc (a document node) to
// their sections and returns a warning for each. A key given in both
// places is an error.
func migrate(doc *yaml.Node) ([]string, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil
	}
	top := doc.Content[0]
	num := lookup(top, "numbering")
	if num == nil || num.Kind != yaml.MappingNode {
		return nil, nil
	}
	var warnings []string
	for _, m := range moved {
		v := take(num, strings.Split(m.old, "."))
		if v == nil {
			continue
		}
		if err := put(top, strings.Split(m.new, "."), v); err != nil {
			return nil, fmt.Errorf("numbering.%s and %s: %w", m.old, m.new, err)
		}
		warnings = append(warnings, fmt.Sprintf("numbering.%s has moved to %s (the file still works; move it there)", m.old, m.new))
	}
	return warnings, nil
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// take removes the value at path from mapping m and returns it (nil when
// absent); a mapping left empty by it is removed too.
func take(m *yaml.Node, path []string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		v := m.Content[i+1]
		if len(path) > 1 {
			if v.Kind != yaml.MappingNode {
				return nil
			}
			got := take(v, path[1:])
			if got != nil && len(v.Content) == 0 {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
			}
			return got
		}
		m.Content = append(m.Content[:i], m.Content[i+2:]...)
		return v
	}
	return nil
}

// put sets the value at path in mapping m, making the mappings on the way.
func put(m *yaml.Node, path []string, v *yaml.Node) error {
	cur := lookup(m, path[0])
	if len(path) == 1 {
		if cur != nil {
			return fmt.Errorf("given in both places")
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}, v)
		return nil
	}
	if cur == nil {
		cur = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}, cur)
	}
	if cur.Kind != yaml.MappingNode {
		return fmt.Errorf("%s is not a section", path[0])
	}
	return put(cur, path[1:], v)
}

// order is the order of the top-level sections in a rewritten file.
var order = []string{"server4", "server6", "dhcp4", "dhcp6", "store", "numbering", "ltnp", "sip", "dns", "provisioning", "tftp", "admin", "log"}

// Rewrite returns a document of the earlier layout in today's (comments
// kept, sections in the usual order) and what moved: what
// `lanteld -migrate` prints. A document in today's layout comes back as
// it is.
func Rewrite(data []byte) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	warnings, err := migrate(&doc)
	if err != nil || len(warnings) == 0 {
		return data, nil, err
	}
	top := doc.Content[0]
	rank := func(k string) int {
		for i, o := range order {
			if o == k {
				return i
			}
		}
		return len(order)
	}
	type pair struct{ k, v *yaml.Node }
	pairs := make([]pair, 0, len(top.Content)/2)
	for i := 0; i+1 < len(top.Content); i += 2 {
		pairs = append(pairs, pair{top.Content[i], top.Content[i+1]})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return rank(a.k.Value) - rank(b.k.Value) })
	top.Content = top.Content[:0]
	for _, p := range pairs {
		top.Content = append(top.Content, p.k, p.v)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), warnings, enc.Close()
}
