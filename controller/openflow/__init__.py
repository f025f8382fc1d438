"""Pure builders of OpenFlow 1.3 messages. Every message is built with datapath=None;
the os-ken app attaches the datapath at its one send point."""
