package main

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/velocity9/v9/auth"
)

func newTLSCmd() *cobra.Command {
	cmd := group("tls", "Create the cluster CA and node certificates (mutual TLS between nodes)")
	var dir string
	ca := group("ca", "Manage the cluster CA")
	caCreate := &cobra.Command{
		Use:   "create",
		Short: "Create the cluster CA (ECDSA P-256, 10 years) in --dir: ca.pem and ca-key.pem",
		Long: `Create the cluster CA in --dir: ca.pem (give it to every node) and ca-key.pem (keep it
offline; it signs node certificates). It refuses to overwrite an existing CA.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth.CreateCA(dir); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "created %s and %s\n", filepath.Join(dir, auth.CACertFile), filepath.Join(dir, auth.CAKeyFile))
			return err
		},
	}
	ca.AddCommand(caCreate)

	var (
		id  string
		dns []string
		ips []net.IP
	)
	cert := group("cert", "Manage node certificates")
	certCreate := &cobra.Command{
		Use:   "create --node ID",
		Short: "Create a node's certificate, signed by the CA in --dir",
		Long: `Create node ID's certificate and key in --dir (node-ID.pem, node-ID-key.pem), signed by
the CA there. It names the node (common name ID, DNS names node.v9 and ID.node.v9), which is
what nodes check on each other; it serves as server and client certificate. Give the agent
--tls-dir DIR (or --tls-ca, --tls-cert, --tls-key). Replacing the files rotates the
certificate without a restart.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usageError{fmt.Errorf("--node is required")}
			}
			if err := auth.CreateNodeCert(dir, id, auth.NodeCertOptions{DNSNames: dns, IPs: ips}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "created %s and %s\n", filepath.Join(dir, auth.NodeCertFile(id)), filepath.Join(dir, auth.NodeKeyFile(id)))
			return err
		},
	}
	f := certCreate.Flags()
	f.StringVar(&id, "node", "", "node id (the agent's --id)")
	f.StringSliceVar(&dns, "dns", nil, "extra DNS names (for clients reaching the API over TLS by name)")
	f.IPSliceVar(&ips, "ip", nil, "extra IP addresses")
	cert.AddCommand(certCreate)

	cmd.PersistentFlags().StringVar(&dir, "dir", "v9-tls", "directory of the CA and certificates")
	cmd.AddCommand(ca, cert)
	return cmd
}
