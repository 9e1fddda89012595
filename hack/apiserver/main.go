// Command kube-apiserver-embedded runs a real kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver)
// with etcd embedded in the same process, for podfabric's integration tests and lab. Loopback only.
//
// Own flag: --etcd-data-dir=DIR (required). Every other argument goes to kube-apiserver, and
// --etcd-servers is set to the embedded etcd (client and peer URLs on free 127.0.0.1 ports).
package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "kube-apiserver-embedded: "+format+"\n", a...)
	os.Exit(1)
}

// startEtcd starts a single-member etcd on two free loopback ports. A port picked by freePort can be
// taken by someone else before etcd binds it, so a failed start is retried on new ports.
func startEtcd(dataDir string) (*embed.Etcd, string) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cport, err := freePort()
		if err != nil {
			fail("etcd client port: %v", err)
		}
		pport, err := freePort()
		if err != nil {
			fail("etcd peer port: %v", err)
		}
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cport)}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pport)}
		cfg := embed.NewConfig()
		cfg.Dir = dataDir
		cfg.UnsafeNoFsync = true // test data: speed over durability across machine crashes
		cfg.ListenClientUrls = []url.URL{cu}
		cfg.AdvertiseClientUrls = []url.URL{cu}
		cfg.ListenPeerUrls = []url.URL{pu}
		cfg.AdvertisePeerUrls = []url.URL{pu}
		cfg.InitialCluster = cfg.Name + "=" + pu.String()
		cfg.LogLevel = "error"
		cfg.QuotaBackendBytes = 8 << 30
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, cu.String()
		case err := <-e.Err():
			fail("embedded etcd: %v", err)
		case <-time.After(60 * time.Second):
			e.Close()
			fail("embedded etcd did not get ready in 60s")
		}
	}
	fail("embedded etcd: %v", lastErr)
	return nil, ""
}

func main() {
	dataDir := ""
	var rest []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--etcd-data-dir="):
			dataDir = strings.TrimPrefix(a, "--etcd-data-dir=")
		case a == "--etcd-data-dir" && i+1 < len(args):
			dataDir = args[i+1]
			i++
		case strings.HasPrefix(a, "--etcd-servers"):
			fail("--etcd-servers is set by this command (etcd is embedded)")
		default:
			rest = append(rest, a)
		}
	}
	if dataDir == "" {
		fmt.Fprintln(os.Stderr, "usage: kube-apiserver-embedded --etcd-data-dir=DIR [kube-apiserver flags]")
		os.Exit(2)
	}
	etcd, clientURL := startEtcd(dataDir)
	go func() {
		// etcd failing under a running apiserver: stop rather than serve errors forever.
		if err, ok := <-etcd.Err(); ok && err != nil {
			fail("embedded etcd failed: %v", err)
		}
	}()
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(rest, "--etcd-servers="+clientURL))
	code := cli.Run(cmd) // returns after SIGTERM/SIGINT and a graceful shutdown
	etcd.Close()
	os.Exit(code)
}
