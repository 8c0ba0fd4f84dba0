# Sourced by run.sh and w8_broker.sh. mosquitto_conf PORT prints the
# broker configuration W8 runs against: what peers/run.sh writes for the
# paho peer, plus "user root" when run as root (mosquitto would otherwise
# drop to a user that cannot read the temporary directory).
mosquitto_conf() {
    echo "listener $1 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "log_dest stderr"
    echo "log_type error"
    echo "log_type warning"
    if [ "$(id -u)" = 0 ]; then echo "user root"; fi
}
