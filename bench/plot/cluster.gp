# Cluster mode: relay throughput with one node vs every pair split across two nodes (left, the
# system under test on one core either way), and one node vs two with the load spread (right,
# a core per node). Bars: medians; whiskers: the lowest and highest run. Called by
# bench/report.mjs (bench/report-cluster.mjs) as
#   gnuplot -e "plotdir=..; datadir=..; outdir=.." cluster.gp
load plotdir.'/common.gp'
set terminal pngcairo size 1200,520 enhanced font 'DejaVu Sans,11'
set output outdir.'/cluster.png'
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set format y '%.0s%c'
unset key
set multiplot layout 1,2
set title 'Relay, 300-byte offers: one node vs across two (nodes + Redis on one core)'
set ylabel 'delivered messages per second'
stats datadir.'/cluster_relay.dat' using 1 nooutput
set xrange [-0.6:STATS_max+0.6]
plot datadir.'/cluster_relay.dat' using 1:3:6:xtic(2) with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1
set title 'One node vs two nodes (a core each), pairs within a node'
stats datadir.'/cluster_scale.dat' using 1 nooutput
set xrange [-0.6:STATS_max+0.6]
plot datadir.'/cluster_scale.dat' using 1:3:6:xtic(2) with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1
unset multiplot
