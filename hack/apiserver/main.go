// Command kube-apiserver-embedded is podfabric's test harness for Kubernetes' own control-plane
// components, one multi-call binary (as hyperkube once was) built from k8s.io/kubernetes:
//
//	kube-apiserver-embedded [apiserver] --etcd-data-dir=DIR [kube-apiserver flags]
//	kube-apiserver-embedded controller-manager [kube-controller-manager flags]
//	kube-apiserver-embedded proxy [kube-proxy flags]
//
// The apiserver runs with etcd embedded in the same process (client and peer URLs on free 127.0.0.1
// ports); its own flag --etcd-data-dir=DIR is required and --etcd-servers is set by this command.
// With no subcommand the apiserver runs (the harness's original interface).
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
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
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
	args := os.Args[1:]
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "", "apiserver", "kube-apiserver":
		runAPIServer(args)
	case "controller-manager", "kube-controller-manager":
		cmd := kcm.NewControllerManagerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "proxy", "kube-proxy":
		cmd := proxy.NewProxyCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	default:
		fmt.Fprintf(os.Stderr, "kube-apiserver-embedded: unknown component %q (apiserver, controller-manager, proxy)\n", sub)
		os.Exit(2)
	}
}

func runAPIServer(args []string) {
	dataDir := ""
	var rest []string
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
