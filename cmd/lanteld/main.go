// Command lanteld is lantel's server: a DHCPv4 server (CoreDHCP) that puts
// phones' LAN telephone numbers online with their leases, and an LTNP/1
// number server. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/daemon"
	"github.com/lantel/lantel/internal/ltnpserver"
	lstore "github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
)

func main() {
	// The group committer spends most of its time in fdatasync, a blocking
	// system call; with a single P (one CPU, or a one-CPU affinity mask)
	// the sockets would not be read meanwhile. Two Ps keep them served.
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("lanteld", flag.ContinueOnError)
	path := fs.String("c", "", "configuration `file` (YAML); without it the embedded defaults")
	store := fs.String("store", "", "override store.path (the bbolt `path`)")
	listen := fs.String("listen", "", "override ltnp.listen (LTNP/1 `address`)")
	check := fs.Bool("check", false, "check the configuration and exit")
	printDefaults := fs.Bool("print-defaults", false, "print the embedded default configuration and exit")
	migrate := fs.String("migrate", "", "print the configuration `file` of an earlier layout in today's (each front a section of its own) and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` until shutdown (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile to `file` at shutdown (for performance work)")
	checkStore := fs.String("check-store", "", "check every page of the store `file` (lanteld stopped, or a backup copy) and exit")
	compact := fs.String("compact", "", "rewrite the store `file` without its free pages (lanteld stopped) and exit")
	readyFile := fs.String("ready-file", "", "once every listener is bound, write `file` (atomically) with a line per listener: front, network, bound address (e.g. \"sip tcp 127.0.0.1:41234\"); removed at shutdown")
	etcdLoad := fs.String("etcd-load", "", "copy the bbolt `file` (a store or a backup) into the empty prefix of store.etcd (every node stopped) and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *checkStore != "" {
		if err := boltstore.Check(*checkStore); err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			if errors.Is(err, lstore.ErrDamaged) {
				return daemon.ExitDamaged
			}
			return 1
		}
		fmt.Println("store ok:", *checkStore)
		return 0
	}
	if *compact != "" {
		before, after, err := boltstore.Compact(*compact)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			if errors.Is(err, lstore.ErrDamaged) {
				return daemon.ExitDamaged
			}
			return 1
		}
		fmt.Printf("store compacted: %s: %d -> %d bytes\n", *compact, before, after)
		return 0
	}
	if *printDefaults {
		_, _ = os.Stdout.Write(config.Defaults)
		return 0
	}
	if *migrate != "" {
		return migrateFile(*migrate)
	}
	load := func() (*config.Config, error) {
		var cfg *config.Config
		var err error
		if *path == "" {
			cfg, err = config.Parse("(embedded defaults)", config.Defaults)
		} else {
			cfg, err = config.Load(*path)
		}
		if err != nil {
			return nil, err
		}
		if *store != "" {
			cfg.Store = *store
		}
		if *listen != "" {
			// Checked as ltnp.listen is (IPv4:port).
			c, err := ltnpserver.Section{Listen: *listen}.Setup()
			if err != nil {
				return nil, fmt.Errorf("-listen: %w", err)
			}
			cfg.Listen = c.Listen
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanteld:", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(os.Stderr, "lanteld: %s: warning: %s\n", cfg.File, w)
	}
	if *etcdLoad != "" {
		n, err := daemon.EtcdLoad(cfg, *etcdLoad)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			return 1
		}
		fmt.Printf("loaded %d keys from %s into %s\n", n, *etcdLoad, cfg.Engine.Etcd.Prefix)
		return 0
	}
	if *check {
		if err := daemon.Check(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			return 1
		}
		fmt.Println("configuration ok")
		return 0
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			return 1
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "lanteld:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			f, err := os.Create(*memProfile)
			if err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				_ = f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "lanteld:", err)
			}
		}()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: daemon.Level(cfg.LogLevel)}))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if *readyFile != "" {
		// A file left by an earlier run must not say this one is ready.
		if err := os.Remove(*readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "lanteld: -ready-file:", err)
			return 1
		}
	}
	d, err := daemon.Start(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanteld:", err)
		if errors.Is(err, lstore.ErrDamaged) {
			return daemon.ExitDamaged
		}
		return 1
	}
	if *readyFile != "" {
		if err := writeReady(*readyFile, d.Listeners()); err != nil {
			fmt.Fprintln(os.Stderr, "lanteld: -ready-file:", err)
			_ = d.Close()
			return 1
		}
		defer func() { _ = os.Remove(*readyFile) }()
	}
	for sig := range sigs {
		if sig != syscall.SIGHUP {
			log.Info("shutting down", "signal", sig.String())
			break
		}
		next, err := load()
		if err == nil {
			err = d.Reload(next)
		}
		if err != nil {
			log.Error("reload refused; the old configuration stays", "err", err)
			continue
		}
		log.Info("configuration reloaded")
	}
	if err := d.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// writeReady writes the ready file: a line per listener ("front network
// address", and the interface of a DHCPv4 socket bound to one), written to
// a temporary file in the same directory and renamed, so that a reader
// sees the whole file or none.
func writeReady(path string, ls []daemon.Listener) error {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s %s %s", l.Front, l.Net, l.Addr)
		if l.Interface != "" {
			fmt.Fprintf(&b, " %s", l.Interface)
		}
		b.WriteByte('\n')
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// migrateFile prints file in today's layout, and what moved on stderr.
func migrateFile(file string) int {
	b, err := os.ReadFile(file)
	if err == nil {
		var moved []string
		if b, moved, err = config.Rewrite(b); err == nil {
			for _, m := range moved {
				fmt.Fprintln(os.Stderr, "lanteld:", m)
			}
			_, err = os.Stdout.Write(b)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanteld:", err)
		return 1
	}
	return 0
}
