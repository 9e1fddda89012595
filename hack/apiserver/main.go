// Command kube-apiserver-embedded runs a real kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver)
// with etcd embedded in the same process, for podfabric's integration tests and lab. Loopback only.
//
// Own flag: --etcd-data-dir=DIR (required). Every other argument goes to kube-apiserver, and
// --etcd-servers is set to the embedded etcd.
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

func main() {
	dataDir := ""
	var rest []string
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "--etcd-data-dir=") {
			dataDir = strings.TrimPrefix(a, "--etcd-data-dir=")
			continue
		}
		rest = append(rest, a)
	}
	if dataDir == "" {
		fmt.Fprintln(os.Stderr, "--etcd-data-dir is required")
		os.Exit(2)
	}
	cport, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd client port:", err)
		os.Exit(1)
	}
	pport, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd peer port:", err)
		os.Exit(1)
	}
	cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cport)}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pport)}
	cfg := embed.NewConfig()
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.LogLevel = "error"
	cfg.QuotaBackendBytes = 8 << 30
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded etcd:", err)
		os.Exit(1)
	}
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fmt.Fprintln(os.Stderr, "embedded etcd did not get ready in 60s")
		os.Exit(1)
	}
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(rest, "--etcd-servers="+cu.String()))
	code := cli.Run(cmd)
	etcd.Close()
	os.Exit(code)
}
