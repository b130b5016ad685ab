#!/usr/bin/env bash
# PKI for the single node: a CA, the apiserver's serving certificate (SANs: loopback, the node
# IP, the kubernetes Service names), the service-account key pair, one static admin token
# (group system:masters, used by every component) and $WORK/kubeconfig. Idempotent: kept
# files are reused, so the kubeconfig stays valid across restarts of the same work dir.
# usage: WORK=DIR NODE_IP=A.B.C.D bash scripts/kube-node/mkpki.sh
set -euo pipefail
K=${WORK:?WORK (the node work dir) is required}; NODE_IP=${NODE_IP:?NODE_IP is required}
P=$K/pki; mkdir -p "$P"; cd "$P"
umask 077
[ -f ca.crt ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
    -subj /CN=greenflow-kube-node-ca 2>/dev/null
# Re-issue the serving certificate when the node IP changed (another machine, same cache).
if [ ! -f apiserver.crt ] || [ "$(cat apiserver.ip 2>/dev/null)" != "$NODE_IP" ]; then
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
        "$NODE_IP" >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 30 \
        -extfile san.ext 2>/dev/null
    echo "$NODE_IP" >apiserver.ip
fi
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
[ -f token ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >token
printf '%s,admin,admin,"system:masters"\n' "$(cat token)" >tokens.csv
cat >"$K/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubenode
  cluster: {server: "https://127.0.0.1:16443", certificate-authority: "$P/ca.crt"}
users:
- name: admin
  user: {token: "$(cat token)"}
contexts:
- name: kubenode
  context: {cluster: kubenode, user: admin}
current-context: kubenode
KC
