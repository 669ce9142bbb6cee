# Post-quantum sessions: handshakes per second with the server on one core, per variant (left),
# and relay throughput in plaintext and inside PQ sessions (right). Bars: medians; whiskers: the
# lowest and highest run. Called by bench/report.mjs as
#   gnuplot -e "plotdir=..; datadir=..; outdir=.." pq.gp
load plotdir.'/common.gp'
set terminal pngcairo size 1200,520 enhanced font 'DejaVu Sans,11'
set output outdir.'/pq.png'
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set format y '%.0s%c'
unset key
set multiplot layout 1,2
set title 'Post-quantum handshakes, server on one core'
set ylabel 'handshakes per second'
set format y '%g'
stats datadir.'/pq_handshake.dat' using 1 nooutput
set xrange [-0.6:STATS_max+0.6]
plot datadir.'/pq_handshake.dat' using 1:3:6:xtic(2) with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1
set title 'Relay of 300-byte offers: plaintext vs PQ sessions'
set ylabel 'delivered messages per second'
set format y '%.0s%c'
stats datadir.'/pq_relay.dat' using 1 nooutput
set xrange [-0.6:STATS_max+0.6]
plot datadir.'/pq_relay.dat' using 1:3:6:xtic(2) with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1
unset multiplot
