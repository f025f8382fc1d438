"""Reading where the emulation dropped packets (tc and ss output; no emulation)."""

from dcilab.emulation.drops import dropped_between, qdisc_drops, socket_drops

TC = """\
qdisc noqueue 0: dev lo root refcnt 2
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)
qdisc htb 5: dev dl1gw1p3 root refcnt 2 r2q 10 default 0x1 direct_packets_stat 0 direct_qlen 1000
 Sent 1182 bytes 9 pkt (dropped 139, overlimits 12 requeues 0)
 backlog 0b 0p requeues 0
qdisc pfifo 10: dev dl1gw1p3 parent 5:1 limit 20p
 Sent 1182 bytes 9 pkt (dropped 139, overlimits 0 requeues 0)
qdisc pfifo 11: dev dl1gw1p3 parent 5:2 limit 20p
 Sent 80 bytes 1 pkt (dropped 2, overlimits 0 requeues 0)
qdisc htb 5: dev eth0 root refcnt 2
 Sent 1 bytes 1 pkt (dropped 99, overlimits 0 requeues 0)
qdisc htb 5: dev dl2lf1p1 root refcnt 2
 Sent 1 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)
"""

SS = """\
Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process
p_raw UNCONN 0      0                [0]:*                    *     users:(("ovs-vswitchd",pid=2851,fd=127)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)
p_raw UNCONN 0      0                  *:dl1gw1p3             *     users:(("ovs-vswitchd",pid=2851,fd=37)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d7)
p_raw UNCONN 0      0                  *:dl2h1-eth0           *     users:(("ovs-vswitchd",pid=2851,fd=38)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d0)
p_raw UNCONN 0      0                  *:eth0                 *     users:(("dhclient",pid=9,fd=3)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d5)
"""


def test_a_qdisc_tree_counts_once_and_only_our_interfaces():
    assert qdisc_drops(TC) == {"qdisc dl1gw1p3": 139, "qdisc dl2lf1p1": 0}


def test_only_ovs_sockets_on_our_interfaces():
    assert socket_drops(SS) == {"socket dl1gw1p3": 7, "socket dl2h1-eth0": 0}


def test_between_two_readings_only_the_places_that_dropped():
    before = {"qdisc dl1gw1p3": 139, "socket dl1gw1p3": 7, "qdisc dl2lf1p1": 0}
    after = {"qdisc dl1gw1p3": 150, "socket dl1gw1p3": 7, "qdisc dl2lf1p1": 3, "qdisc dl9x": 1}
    assert dropped_between(before, after) == {"qdisc dl1gw1p3": 11, "qdisc dl2lf1p1": 3,
                                              "qdisc dl9x": 1}
