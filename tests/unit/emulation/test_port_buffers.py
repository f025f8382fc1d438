"""Finding ovs-vswitchd's packet sockets on our interfaces, and its send socket, bound to
none (no emulation)."""

from dcilab.emulation.port_buffers import packet_socket_ports, unbound_packet_sockets

PACKET = """\
sk               RefCnt Type Proto  Iface R Rmem   User   Inode
0000000000000000 3      3    0003   0     1 0      0      40123
0000000000000000 3      3    0003   17    1 0      0      40124
0000000000000000 3      3    88cc   18    1 4480   0      40125
0000000000000000 3      3    0003   99    1 0      0      40126
"""


def test_only_sockets_bound_to_our_interfaces():
    # ifindex 0 is a socket bound to every interface (not one of ours), 99 another's
    assert packet_socket_ports(PACKET, {17: "dl1gw1p3", 18: "dl2sp2p1"}) == {
        40124: "dl1gw1p3", 40125: "dl2sp2p1"}


def test_an_empty_table_or_junk_finds_nothing():
    assert packet_socket_ports("", {17: "dl1gw1p3"}) == {}
    assert packet_socket_ports("header\nnot a socket line\n", {17: "dl1gw1p3"}) == {}


def test_the_send_socket_is_the_one_bound_to_no_interface():
    assert unbound_packet_sockets(PACKET) == {40123}
    assert unbound_packet_sockets("") == set()
    assert unbound_packet_sockets("header\nnot a socket line\n") == set()
