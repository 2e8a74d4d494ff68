package ltnp

import (
	"net/netip"
	"testing"
)

func BenchmarkDecodeQuery(b *testing.B) {
	m := Message{Type: TypeQuery, TxID: 1}
	m.SetNumber("10002001")
	buf, _ := m.Append(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendReply(b *testing.B) {
	m := Message{Type: TypeQueryReply, TxID: 1}
	m.SetResult(ResultOK)
	m.SetNumber("10002001")
	m.SetIPv4(netip.MustParseAddr("192.0.2.20"))
	m.SetLifetime(3600)
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		out, _ = m.Append(out[:0])
	}
}
